"""Resume after a crash: take over dispatches whose orchestrator died, and watch their agents.

The handle watches an agent by pid (checking the process start time, so a recycled pid is
not mistaken for it), signals its process group, and reads its stderr tail back from the
log. The exit status of a process that is not our child is unknowable: it reports 0 and
says so; the dispatch is then judged from its PR. Each adopted dispatch keeps its id, so
it still gets exactly one reflection.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from pytest_chump.backlog import Backlog
from pytest_chump.contracts import Dispatch, Outcome
from pytest_chump.dispatcher import Flight
from pytest_chump.model import Gap
from pytest_chump.owners import owner_alive, proc_start_ticks
from pytest_chump.runner import NOTABLE, stderr_log
from pytest_chump.store import DispatchRow, Store

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
        """Notable lines of the ``.stderr.log`` the agent writes itself (runner.py); for logs
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
        return {"adopted": True, "exit_status_unknown": not self._running()}

    def close(self) -> None:
        """Nothing to release: no pipes or threads belong to this process."""


def adopt_orphans(store: Store, backlog: Backlog, owner: str) -> list[Flight]:
    """Flights for the unfinished dispatches of dead owners, now leased to ``owner``."""
    gaps = {g.id: g for g in backlog.gaps}
    flights = []
    for row in store.unfinished():
        if row.owner == owner or owner_alive(row.owner):
            continue
        if not store.acquire_lease(row.gap_id, owner):
            continue
        store.update_dispatch(row.id, owner=owner)
        flight = _flight(row, gaps.get(row.gap_id))
        if row.state == "starting":  # it died between recording and starting the agent
            flight.stop_outcome = Outcome(
                "killed", reason="orchestrator died while starting the agent", cause="interrupted"
            )
        flights.append(flight)
    return flights


def _flight(row: DispatchRow, gap: Gap | None) -> Flight:
    meta = row.meta_dict
    log = Path(row.log_path) if row.log_path else None
    handle = AdoptedHandle(row.pid, str(meta.get("pid_start", "")), log)
    gap = gap or Gap(row.gap_id, effort=row.effort, priority=row.priority)
    dispatch = Dispatch(
        gap, row.branch, Path(row.worktree), row.backend, row.started_at, row.model, handle, row.id
    )
    return Flight(dispatch, str(meta.get("base_sha", "")))
