"""Why a gap is or is not ready: the picker's rules, one reason at a time, for ``chump ready``.

The same rules as :func:`~pytest_chump.pick.picker.pick` (a test holds the two together):
a gap is ready when no reason below applies; the first that applies is the one given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pytest_chump.core.model import Gap
from pytest_chump.pick.picker import PICKABLE_PRIORITIES, kind_filter


@dataclass(frozen=True)
class Context:
    """What readiness depends on besides the gap itself."""

    gaps: Mapping[str, Gap]  # every gap of the backlog by id
    done: frozenset[str]  # done in the backlog, or shipped
    busy: frozenset[str] = frozenset()  # in flight or leased
    shipped: frozenset[str] = frozenset()
    quarantined: Mapping[str, str] = field(default_factory=dict)  # gap id -> its problem
    last: Mapping[str, str] = field(default_factory=dict)  # gap id -> its last outcome
    kind: str = "user"


def why_not(gap: Gap, ctx: Context) -> str | None:
    """Why ``gap`` cannot be dispatched now, or None when it is ready."""
    if gap.id in ctx.quarantined:
        return f"quarantined: {ctx.quarantined[gap.id]}"
    if gap.id in ctx.shipped:
        return "shipped"
    if gap.status != "open":
        return f"status {gap.status}"
    if gap.id in ctx.busy:
        return "in flight or leased by an orchestrator"
    if gap.priority not in PICKABLE_PRIORITIES:
        return f"priority {gap.priority or '(none)'} (only P0-P2 are dispatched)"
    if gap.effort == "xl":
        return "effort xl (break it down first)"
    if not kind_filter(ctx.kind)(gap.kind):
        return f"kind {gap.kind or 'user'} (dispatching kind {ctx.kind})"
    blockers = [dep for dep in gap.depends_on if dep not in ctx.done]
    if blockers:
        more = f" (and {len(blockers) - 1} more)" if len(blockers) > 1 else ""
        return f"blocked by {blockers[0]}: {_state(blockers[0], ctx)}{more}"
    return None


def _state(gap_id: str, ctx: Context) -> str:
    """What keeps a dependency from being done."""
    if gap_id not in ctx.gaps:
        return "unknown id"
    if gap_id in ctx.quarantined:
        return "quarantined"
    if gap_id in ctx.busy:
        return "in flight"
    if gap_id in ctx.last:
        return ctx.last[gap_id]
    status = ctx.gaps[gap_id].status
    return "not dispatched yet" if status == "open" else f"status {status}"
