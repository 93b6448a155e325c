"""Named points where the orchestrator can be made to die, to prove it survives dying there.

``CHUMP_TEST_CRASH_AT=<point>`` (or ``<point>:<n>`` for its n-th pass) makes the process
SIGKILL itself at that point: no handler, no cleanup, exactly like the OOM killer or a
power cut between two steps. The crash-point test finds every ``crash_point("...")`` call
in the package by reading the source, so a new step is covered as soon as it is marked.
Unset (always, outside that test) a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "CHUMP_TEST_CRASH_AT"
_passes: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Die here when ``CHUMP_TEST_CRASH_AT`` names this point (and this pass)."""
    target = os.environ.get(CRASH_ENV)
    if not target:
        return
    point, _, nth = target.partition(":")
    if point != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
