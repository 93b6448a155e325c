"""What a dispatch round would start now: the backlog, what the store says is in flight,
leased or shipped, and the agents already running in the repository, whoever started them.

The dry run prints this plan and the real run follows the same rules, so the two agree; the
reference header and the "nothing to do" line are said here once for every mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pytest_chump.core.model import Gap
from pytest_chump.core.records import Backlog
from pytest_chump.loop.app import App
from pytest_chump.state.database import DB_NAME
from pytest_chump.state.locks import STATE_DIR
from pytest_chump.state.rows import DispatchRow
from pytest_chump.state.store import Store

HEADER = "chump-orchestrator (MVP complete, {mode}): {total} total gaps, {open} open, {done} done; "
HEADER += "would dispatch {picked} of max-parallel {capacity}"


@dataclass(frozen=True)
class Occupancy:
    """The repository's dispatch state, as far as picking is concerned."""

    running: int = 0  # agents in flight in this repository, whichever process started them
    busy: frozenset[str] = frozenset()  # gaps in flight (or orphaned) or leased: not again now
    shipped: frozenset[str] = frozenset()  # gaps a dispatch shipped: never again
    last: dict[str, DispatchRow] = field(default_factory=dict)  # last ended dispatch per gap


def occupancy(store: Store | None) -> Occupancy:
    if store is None:
        return Occupancy()
    unfinished = store.unfinished()
    return Occupancy(
        running=len(store.in_flight()),
        busy=frozenset({row.gap_id for row in unfinished} | set(store.live_leases())),
        shipped=store.shipped_ids(),
        last=store.last_outcomes(),
    )


def existing_store(repo_root: Path) -> Store | None:
    """The repository's store when there is one; never creates ``.chump/``."""
    path = repo_root / STATE_DIR / DB_NAME
    return Store(path) if path.is_file() else None


@dataclass(frozen=True)
class Plan:
    backlog: Backlog
    occupancy: Occupancy
    capacity: int
    picks: tuple[Gap, ...]

    @property
    def slots(self) -> int:
        return max(self.capacity - self.occupancy.running, 0)


def plan(app: App, backlog: Backlog, seen: Occupancy) -> Plan:
    """The gaps a round would start now, with ``seen`` counted against ``max_parallel``."""
    capacity = app.settings.max_parallel
    slots = max(capacity - seen.running, 0)
    picks = app.pick(backlog, slots, seen.busy, seen.shipped) if slots else []
    return Plan(backlog, seen, capacity, tuple(picks))


def header(plan: Plan, mode: str) -> str:
    """The reference header: totals of the backlog and how many gaps this round starts."""
    gaps = plan.backlog.gaps
    return HEADER.format(
        mode=mode,
        total=len(gaps),
        open=sum(1 for g in gaps if g.status == "open"),
        done=len(plan.backlog.done_ids()),
        picked=len(plan.picks),
        capacity=plan.capacity,
    )


def nothing_to_do(plan: Plan) -> str:
    """One line saying why a round starts nothing."""
    running = plan.occupancy.running
    if plan.slots == 0:
        return (
            f"nothing to dispatch: {running} agents already running in this repository "
            f"(max-parallel {plan.capacity})"
        )
    usable = [g for g in plan.backlog.dispatchable() if g.status == "open"]
    if not usable:
        return "nothing to dispatch: no open gap without problems in the backlog"
    return (
        f"nothing to dispatch: none of the {len(usable)} open gaps is ready "
        "(`chump ready --explain` says why)"
    )


def quarantine_note(backlog: Backlog) -> str | None:
    """The one stderr line for gaps that have problems (and entries that could not be read at
    all), or None when there are none."""
    bad = backlog.quarantined
    count = sum(1 for gap in backlog.gaps if gap.id in bad) if bad else 0
    lost = sum(1 for p in backlog.problems if p.gap_id is None)
    if not count and not lost:
        return None
    parts = [f"{count} gaps with problems are quarantined"] if count else []
    parts += [f"{lost} entries or files could not be read"] if lost else []
    return f"chump: {' and '.join(parts)} (never dispatched); `chump validate` lists the problems"
