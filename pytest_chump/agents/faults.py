"""Fault injection: ``CHUMP_FAULT_INJECT`` swaps a dispatched agent for a scripted failure.

It lets every failure path of dispatch and monitoring (spawn error, crash, exit without a PR,
hang past the deadline) run end to end with real processes, without an agent or an API key.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from pytest_chump.core.errors import ChumpError

FAULT_ENV = "CHUMP_FAULT_INJECT"
SPAWN_FAIL = "spawn_fail"
EXIT_1 = "exit_1"
EXIT_0_NO_PR = "exit_0_no_pr"
MONITOR_TIMEOUT = "monitor_timeout"
FAULT_MODES: tuple[str, ...] = (SPAWN_FAIL, EXIT_1, EXIT_0_NO_PR, MONITOR_TIMEOUT)

_SCRIPTS: dict[str, str] = {
    EXIT_1: "import time,sys; time.sleep(0.1); sys.exit(1)",
    EXIT_0_NO_PR: "import time,sys; time.sleep(0.1); sys.exit(0)",
    MONITOR_TIMEOUT: "import time; time.sleep(3600)",
}


def fault_mode(env: Mapping[str, str]) -> str | None:
    """The first recognised mode of the comma-separated ``CHUMP_FAULT_INJECT``, else None.

    Unknown tokens are ignored so one variable can also carry modes for other components.
    """
    tokens = (token.strip().lower() for token in env.get(FAULT_ENV, "").split(","))
    return next((token for token in tokens if token in FAULT_MODES), None)


def fault_argv(mode: str | None) -> list[str] | None:
    """The command that stands in for the agent under ``mode``; None when the agent runs."""
    code = _SCRIPTS.get(mode) if mode is not None else None
    return None if code is None else [sys.executable, "-c", code]


def raise_if_spawn_fail(mode: str | None) -> None:
    """Fail the spawn the way a missing binary would, when ``mode`` is ``spawn_fail``."""
    if mode == SPAWN_FAIL:
        raise ChumpError(f"fault injected: {SPAWN_FAIL}")
