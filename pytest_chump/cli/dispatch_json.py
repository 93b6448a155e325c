"""``chump dispatch --json``: one JSON object on stdout (``core/schemas/dispatch.schema.json``).

The dry run's is the plan: the header's facts and the picks. A real run's adds what it
started, how each dispatch it finished ended (the summary's entries and totals) and why it
exits as it does; its progress lines go to stderr meanwhile. Free text is what the store
keeps: redacted and bounded.
"""

from __future__ import annotations

import signal
from collections import deque
from typing import TYPE_CHECKING

from pytest_chump.loop.plan import Plan, nothing_to_do
from pytest_chump.loop.progress import TOTALS

if TYPE_CHECKING:
    from pytest_chump.loop.app import App
    from pytest_chump.loop.orchestrator import Orchestrator
    from pytest_chump.state.rows import DispatchRow
    from pytest_chump.state.store import Store


def planned(app: App, plan: Plan, mode: str) -> dict[str, object]:
    """The header's facts (gaps, agents in flight, free slots, gaps ready) and the picks."""
    backlog, seen = plan.backlog, plan.occupancy
    ready = app.pick(backlog, len(backlog.gaps), seen.busy, seen.shipped)
    return {
        "mode": mode,
        "total": len(backlog.gaps),
        "open": sum(1 for g in backlog.gaps if g.status == "open"),
        "done": len(backlog.done_ids()),
        "max_parallel": plan.capacity,
        "in_flight": seen.running,
        "slots": plan.slots,
        "ready": len(ready),
        "picks": [
            {
                "gap_id": gap.id,
                "priority": gap.priority,
                "effort": gap.effort,
                "worktree": str(app.worktree_for(gap)),
                "title": gap.title,
            }
            for gap in plan.picks
        ],
        "nothing_to_do": None if plan.picks else nothing_to_do(plan),
    }


def ran(app: App, plan: Plan, mode: str, orch: Orchestrator, store: Store) -> dict[str, object]:
    """:func:`planned` plus the dispatches this run started and those it finished (in the
    order they started, as the summary lists them) with the totals."""
    mine = store.dispatches("owner = ? AND started_at >= ?", (orch.owner, orch.started_at))
    ended = store.dispatches("owner = ? AND ended_at >= ?", (orch.owner, orch.started_at))
    stored: dict[tuple[str, str], deque[DispatchRow]] = {}
    for done in ended:
        stored.setdefault((done.gap_id, done.branch), deque()).append(done)
    entries = []
    for gap_id, branch, outcome in orch.finisher.in_dispatch_order():
        same = stored.get((gap_id, branch))
        row = same.popleft() if same else None
        entries.append(
            {
                "gap_id": gap_id,
                "branch": branch,
                "dispatch_id": row.id if row else None,
                "outcome": outcome.name,
                "pr_number": outcome.pr_number,
                "reason": row.reason if row else outcome.reason,
                "cause": (row.cause if row else outcome.cause) or None,
            }
        )
    counts = orch.finisher.counts
    return {
        **planned(app, plan, mode),
        "dispatched": [
            {
                "dispatch_id": row.id,
                "gap_id": row.gap_id,
                "branch": row.branch,
                "worktree": row.worktree,
                "backend": row.backend,
                "model": row.model,
                "pid": row.pid,
            }
            for row in mine
        ],
        "entries": entries,
        "totals": {name: counts.get(name, 0) for name in TOTALS},
    }


def exited(
    summary: dict[str, object], status: int, orch: Orchestrator, broken: list[str]
) -> dict[str, object]:
    """``summary`` with the exit status and, unless 0, why."""
    reason = None
    if status >= 128:
        reason = f"interrupted by {signal.Signals(status - 128).name}"
    elif broken:
        reason = "a backend is broken: " + "; ".join(broken)
    elif status:
        reason = f"{orch.finisher.counts['spawn_failures']} dispatches failed to start"
    return {**summary, "exit_status": status, "exit_reason": reason}


def deferred(mode: str, pid: int | None, said: str) -> dict[str, object]:
    """``--exclusive`` while another orchestrator runs: it takes the backlog, this one ends."""
    return {"mode": mode, "orchestrator_pid": pid, "exit_status": 0, "exit_reason": said}
