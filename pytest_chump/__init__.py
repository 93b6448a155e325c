"""pytest-chump: a self-dispatching orchestrator for AI coding agents.

Exposes the pluggy ``hookimpl`` marker so plugins write ``@pytest_chump.hookimpl``.
Importing this package is cheap: it pulls in pluggy only (no yaml, git or sqlite).
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"
PROJECT_NAME = "chump"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]
