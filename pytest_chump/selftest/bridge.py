"""The bridge from pytest to chump's plugin manager: ``chump_*`` hooks in conftest files.

pytest only treats ``pytest_*`` functions as hooks, so the plugins of a pytest run that
implement chump hooks are handed to chump's own plugin manager explicitly (it accepts
unmarked ``chump_*`` functions). Used by ``--chump-self-test`` and the ``chump_run`` fixture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_chump.core.plugins import HOOK_NAMES

if TYPE_CHECKING:
    import pytest


def bridged(config: pytest.Config) -> list[object]:
    """conftest modules and plugins that implement chump hooks (functions named like one).

    pytest only treats ``pytest_*`` functions as hooks, so these are handed to chump's own
    plugin manager explicitly (it accepts unmarked ``chump_*`` functions).
    """
    found = []
    for plugin in config.pluginmanager.get_plugins():
        if plugin is None or getattr(plugin, "__name__", "").startswith("pytest_chump."):
            continue
        if any(callable(getattr(plugin, name, None)) for name in HOOK_NAMES):
            found.append(plugin)
    return found
