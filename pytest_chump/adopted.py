"""A handle for an agent started by an orchestrator that has since died (resume after a crash).

It watches the agent by pid (checking the process start time, so a recycled pid is not
mistaken for it), signals its process group, and reads its stderr tail back from the log.
The exit status of a process that is not our child is unknowable: it reports 0 and says so.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from pytest_chump.store import proc_start_ticks

_NOTABLE = re.compile(r"\b(warn|error|fail|panic)", re.I)
TAIL_LINES = 64


class AdoptedHandle:
    """Satisfies ``contracts.SpawnHandle`` for an agent this process did not start."""

    def __init__(self, pid: int | None, start_ticks: str, log_path: Path | None) -> None:
        self.pid = pid
        self.log_path = log_path
        self._ticks = start_ticks

    def _running(self) -> bool:
        if self.pid is None:
            return False
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return False
        return state != "Z" and (not self._ticks or proc_start_ticks(self.pid) == self._ticks)

    def poll(self) -> int | None:
        return None if self._running() else 0

    def _signal(self, sig: signal.Signals) -> None:
        if self.pid is not None and self._running():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def stderr_tail(self) -> list[str]:
        if self.log_path is None or not self.log_path.exists():
            return []
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        notable = [
            ln.removeprefix("[stderr] ").strip() for ln in lines if ln.startswith("[stderr]")
        ]
        return [ln for ln in notable if _NOTABLE.search(ln)][-TAIL_LINES:]

    def last_activity(self) -> float:
        """The log's last write, on the monotonic clock."""
        try:
            age = time.time() - self.log_path.stat().st_mtime if self.log_path else 0.0
        except OSError:
            age = 0.0
        return time.monotonic() - max(age, 0.0)

    def report(self) -> Mapping[str, object]:
        return {"adopted": True, "exit_status_unknown": not self._running()}

    def close(self) -> None:
        """Nothing to release: no pipes or threads belong to this process."""
