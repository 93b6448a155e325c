"""Resume after a crash: take over dispatches whose orchestrator died, and watch their agents.

Their agents are watched by pid (:class:`~pytest_chump.agents.adopted_handle.AdoptedHandle`),
or re-attached through their spawner when they run elsewhere (a Ray job, by its id);
an exit status we cannot know makes the PR the judge. Each adopted dispatch keeps its id, so
it still gets exactly one reflection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from pytest_chump.agents.adopted_handle import AdoptedHandle
from pytest_chump.backlog import Backlog
from pytest_chump.core.crashpoints import crash_point
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.model import Gap
from pytest_chump.core.protocols import Dispatch, SpawnHandle
from pytest_chump.core.records import Outcome
from pytest_chump.dispatch.dispatcher import Flight
from pytest_chump.reflect.causes import WORKER_LOST
from pytest_chump.state.rows import DispatchRow
from pytest_chump.state.store import Store

Reattach = Callable[[str, Mapping[str, object], Path, Path | None], SpawnHandle]
"""(backend, remote identity, log path, record path) -> the handle of an agent that runs
elsewhere (a Ray job), through its spawner's ``adopt``."""


def adopt_orphans(
    store: Store, backlog: Backlog, owner: str, reattach: Reattach | None = None
) -> list[Flight]:
    """Flights for the unfinished dispatches of owners that are gone (dead, or silent past
    ``lease_ttl``), now leased to ``owner``. An agent that runs elsewhere is re-attached
    through ``reattach``; a local one is watched by pid."""
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
        flight = _flight(row, gaps.get(row.gap_id), reattach)
        if flight.stop_outcome is not None:  # its agent runs elsewhere, out of reach
            flights.append(flight)
            continue
        handle = flight.dispatch.handle
        remote = not isinstance(handle, AdoptedHandle) and handle is not None
        released = remote or (isinstance(handle, AdoptedHandle) and handle.released())
        if row.state == "starting" or not released:
            # it died between recording the dispatch and releasing the agent: a supervisor
            # may still wait for a go that never comes; stop it (and anything it began)
            if handle is not None:
                handle.kill()
            flight.stop_outcome = Outcome(
                "killed", reason="orchestrator died while starting the agent", cause="interrupted"
            )
        flights.append(flight)
    return flights


def _flight(row: DispatchRow, gap: Gap | None, reattach: Reattach | None) -> Flight:
    meta = row.meta_dict
    log = Path(row.log_path) if row.log_path else None
    record = Path(str(meta["record"])) if meta.get("record") else None
    remote = meta.get("remote")
    handle: SpawnHandle | None
    lost = ""
    if isinstance(remote, dict):
        try:
            if reattach is None or log is None:
                raise ChumpError("this orchestrator cannot re-attach to it")
            handle = reattach(row.backend, remote, log, record)
        except ChumpError as exc:
            handle, lost = None, f"cannot re-attach to the agent: {exc.lines()[0]}"
    else:
        handle = AdoptedHandle(row.pid, str(meta.get("pid_start", "")), log, record)
    gap = gap or Gap(row.gap_id, effort=row.effort, priority=row.priority)
    dispatch = Dispatch(
        gap, row.branch, Path(row.worktree), row.backend, row.started_at, row.model, handle, row.id
    )
    dispatch.meta.update(meta)  # its arm and its place in the gap's chain of attempts
    flight = Flight(dispatch, str(meta.get("base_sha", "")))
    if lost:
        flight.stop_outcome = Outcome("killed", reason=lost, cause=WORKER_LOST)
    return flight
