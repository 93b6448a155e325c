"""The handle of an agent this process did not start (its orchestrator died): watched by pid.

The pid is the agent's supervisor, which leads its process group. The handle checks the
process start time, so a recycled pid is not mistaken for it, signals the group, reads the
stderr tail back from the log files, and the exit status from the supervisor's identity
record (:mod:`~pytest_chump.core.supervisor`). Without a record (a supervisor killed with
its agent, or a dispatch recorded by a version without supervisors) the status is unknowable:
it reports 0 and says so in ``report()``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from pytest_chump.agents.logfiles import read_record, stderr_log
from pytest_chump.agents.process import NOTABLE
from pytest_chump.state.liveness import agent_alive, group_alive, group_members

TAIL_LINES = 64


class AdoptedHandle:
    """Satisfies ``SpawnHandle`` for an agent this process did not start."""

    def __init__(
        self,
        pid: int | None,
        start_ticks: str,
        log_path: Path | None,
        record_path: Path | None = None,
    ) -> None:
        self.pid = pid
        self.log_path = log_path
        self.record_path = record_path
        self._ticks = start_ticks

    def released(self) -> bool:
        """Whether the agent was ever started: its supervisor recorded it. False for a
        supervisor still waiting for the orchestrator that died before releasing the agent."""
        return self.record_path is None or read_record(self.record_path).get("started") is True

    def _recorded_exit(self) -> int | None:
        status = read_record(self.record_path).get("exit") if self.record_path else None
        return status if isinstance(status, int) and not isinstance(status, bool) else None

    def _running(self) -> bool:
        """The supervisor runs, or (it alone was killed) the agent does. Children the agent
        left behind do not keep it running: they are stopped at teardown."""
        if agent_alive(self.pid, self._ticks):
            return True
        record = read_record(self.record_path)
        agent = record.get("pid")
        if "exit" in record or not isinstance(agent, int) or not self.pid:
            return False
        return agent in group_members(self.pid, self._ticks)

    def _signal(self, sig: signal.Signals) -> None:
        """Signal the agent's group while anything of it lives (stragglers too)."""
        if self.pid is not None and group_alive(self.pid, self._ticks):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def poll(self) -> int | None:
        if self._running():
            return None
        status = self._recorded_exit()
        return 0 if status is None else status

    def terminate(self) -> None:
        """SIGTERM to the supervisor (it passes it on to the group once), else to the group."""
        if self.pid is not None and agent_alive(self.pid, self._ticks) and self.record_path:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGTERM)
            return
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def stderr_tail(self) -> list[str]:
        """Notable lines of the ``.stderr.log`` the agent writes itself (see ``logfiles``); for logs
        of older versions, the ``[stderr]`` lines inside the main log."""
        if self.log_path is None:
            return []
        try:
            text = stderr_log(self.log_path).read_text(encoding="utf-8", errors="replace")
            notable = text.splitlines()
        except FileNotFoundError:
            try:
                old = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                return []
            notable = [ln.removeprefix("[stderr] ") for ln in old if ln.startswith("[stderr]")]
        except OSError:
            return []
        return [ln.strip() for ln in notable if NOTABLE.search(ln)][-TAIL_LINES:]

    def last_activity(self) -> float:
        """The last write to the log or the stderr log, on the monotonic clock."""
        mtimes: list[float] = []
        for path in (self.log_path, stderr_log(self.log_path)) if self.log_path else ():
            with contextlib.suppress(OSError):
                mtimes.append(path.stat().st_mtime)
        age = time.time() - max(mtimes) if mtimes else 0.0
        return time.monotonic() - max(age, 0.0)

    def report(self) -> Mapping[str, object]:
        unknown = not self._running() and self._recorded_exit() is None
        return {"adopted": True, "exit_status_unknown": unknown}

    def close(self) -> None:
        """Nothing to release: no pipes or threads belong to this process."""
