"""Resume after a crash: take over dispatches whose orchestrator died, and watch their agents.

Their agents are watched by pid (:class:`~pytest_chump.agents.adopted_handle.AdoptedHandle`);
an exit status we cannot know makes the PR the judge. Each adopted dispatch keeps its id, so
it still gets exactly one reflection.
"""

from __future__ import annotations

from pathlib import Path

from pytest_chump.agents.adopted_handle import AdoptedHandle
from pytest_chump.backlog import Backlog
from pytest_chump.core.crashpoints import crash_point
from pytest_chump.core.model import Gap
from pytest_chump.core.protocols import Dispatch
from pytest_chump.core.records import Outcome
from pytest_chump.dispatch.dispatcher import Flight
from pytest_chump.state.rows import DispatchRow
from pytest_chump.state.store import Store


def adopt_orphans(store: Store, backlog: Backlog, owner: str) -> list[Flight]:
    """Flights for the unfinished dispatches of owners that are gone (dead, or silent past
    ``lease_ttl``), now leased to ``owner``."""
    gaps = {g.id: g for g in backlog.gaps}
    flights = []
    for row in store.unfinished():
        if row.owner == owner or store.live(row.owner):
            continue
        if not store.acquire_lease(row.gap_id, owner):
            continue
        store.update_dispatch(row.id, owner=owner)
        store.link_lease(row.gap_id, owner, row.id)  # its slot frees as soon as it ends
        crash_point("resume.adopted")
        flight = _flight(row, gaps.get(row.gap_id))
        handle = flight.dispatch.handle
        if row.state == "starting" or not (isinstance(handle, AdoptedHandle) and handle.released()):
            # it died between recording the dispatch and releasing the agent: a supervisor
            # may still wait for a go that never comes; stop it (and anything it began)
            if handle is not None:
                handle.kill()
            flight.stop_outcome = Outcome(
                "killed", reason="orchestrator died while starting the agent", cause="interrupted"
            )
        flights.append(flight)
    return flights


def _flight(row: DispatchRow, gap: Gap | None) -> Flight:
    meta = row.meta_dict
    log = Path(row.log_path) if row.log_path else None
    record = Path(str(meta["record"])) if meta.get("record") else None
    handle = AdoptedHandle(row.pid, str(meta.get("pid_start", "")), log, record)
    gap = gap or Gap(row.gap_id, effort=row.effort, priority=row.priority)
    dispatch = Dispatch(
        gap, row.branch, Path(row.worktree), row.backend, row.started_at, row.model, handle, row.id
    )
    dispatch.meta.update(meta)  # its arm and its place in the gap's chain of attempts
    return Flight(dispatch, str(meta.get("base_sha", "")))
