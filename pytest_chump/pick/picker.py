"""Choosing which gaps to start next: eligibility, ordering, INFRA bias, critical path.

Pure functions over ``Gap`` sequences (no I/O); ``pick`` backs the built-in ``chump_pick``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter

from pytest_chump.core.model import KIND_FILTERS, PICKER_ORDERS, Gap, domain_for
from pytest_chump.core.records import PickRequest

PICKABLE_PRIORITIES: frozenset[str] = frozenset({"P0", "P1", "P2"})
BIASED_DOMAIN = "infra"


def pick(gaps: Sequence[Gap], request: PickRequest) -> list[Gap]:
    """Up to ``request.slots`` eligible gaps (P0-P2, not xl), in the order to start them."""
    return _select(
        gaps, request, priorities=PICKABLE_PRIORITIES, exclude_xl=True, tiebreak=request.order
    )


def pickable_gaps(gaps: Sequence[Gap], n: int, done_ids: Iterable[str]) -> list[Gap]:
    """The reference batch picker: open, P0-P2, not xl, deps done, by priority, first ``n``."""
    request = PickRequest(slots=n, done_ids=frozenset(done_ids), kind="any", order="declared")
    return pick(gaps, request)


def pick_gap(
    gaps: Sequence[Gap],
    done_ids: Iterable[str],
    live_claimed: Iterable[str],
    active_count: int,
    capacity: int,
    *,
    kind: str = "user",
    recently_done: Sequence[str] = (),
    bias_threshold: float = 0.8,
    bias_window: int = 10,
) -> Gap | None:
    """The reference single-gap policy picker: open or perpetual, any priority and effort."""
    if active_count >= capacity:
        return None
    request = PickRequest(
        slots=1,
        done_ids=frozenset(done_ids),
        busy_ids=frozenset(live_claimed),
        kind=kind,
        statuses=frozenset({"open", "perpetual"}),
        bias_threshold=bias_threshold,
        bias_window=bias_window,
        recently_done=tuple(recently_done),
    )
    chosen = _select(gaps, request, priorities=None, exclude_xl=False, tiebreak="effort")
    return chosen[0] if chosen else None


def recently_done_ids(gaps: Sequence[Gap]) -> tuple[str, ...]:
    """Ids of ``done`` gaps, newest ``closed_date`` first; undated last, declared order kept."""
    done = [gap for gap in gaps if gap.status == "done"]
    # reverse=True keeps the sort stable, and "" (no date) sorts below every ISO date.
    return tuple(gap.id for gap in sorted(done, key=attrgetter("closed_date"), reverse=True))


def critical_path_lengths(gaps: Sequence[Gap], done_ids: Iterable[str]) -> dict[str, int]:
    """Per id, the length of the longest chain of open gaps that transitively depend on it.

    Iterative, O(V + E): a gap is settled once all its open dependents are. Gaps on a
    dependency cycle never settle and keep the partial length reached so far.
    """
    done = frozenset(done_ids)
    known = {gap.id for gap in gaps}
    # only open gaps extend chains: a done gap is no work to do, so it has no outgoing edges
    edges = {
        gap.id: {dep for dep in gap.depends_on if dep in known}
        for gap in gaps
        if gap.depends_on and gap.id not in done and gap.status != "done"
    }
    pending = dict.fromkeys(known, 0)
    for deps in edges.values():
        for dep in deps:
            pending[dep] += 1
    lengths = dict.fromkeys(known, 0)
    ready = [gap_id for gap_id, count in pending.items() if count == 0]
    while ready:
        gap_id = ready.pop()
        longer = lengths[gap_id] + 1
        for dep in edges.get(gap_id, ()):
            if lengths[dep] < longer:
                lengths[dep] = longer
            pending[dep] -= 1
            if pending[dep] == 0:
                ready.append(dep)
    return lengths


def _select(
    gaps: Sequence[Gap],
    request: PickRequest,
    *,
    priorities: frozenset[str] | None,
    exclude_xl: bool,
    tiebreak: str,
) -> list[Gap]:
    """Eligible gaps sorted by (domain penalty, priority, tiebreak), stable, first ``slots``."""
    if request.slots <= 0:
        return []
    kind_ok = kind_filter(request.kind)
    if tiebreak not in PICKER_ORDERS:
        raise ValueError(f"unknown picker order {tiebreak!r} (valid: {', '.join(PICKER_ORDERS)})")
    eligible = [
        gap
        for gap in gaps
        if gap.status in request.statuses
        and (priorities is None or gap.priority in priorities)
        and not (exclude_xl and gap.effort == "xl")
        and gap.id not in request.busy_ids
        and kind_ok(gap.kind)
        and all(dep in request.done_ids for dep in gap.depends_on)
    ]
    if len(eligible) < 2:  # nothing to order (the critical path is not worth computing)
        return eligible[: request.slots]
    key = _sort_key(gaps, request, tiebreak)
    return sorted(eligible, key=key)[: request.slots]


def _sort_key(
    gaps: Sequence[Gap], request: PickRequest, tiebreak: str
) -> Callable[[Gap], tuple[int, int, int]]:
    demote = _infra_demoted(request)
    second = _tiebreak(gaps, request, tiebreak)

    def key(gap: Gap) -> tuple[int, int, int]:
        penalty = demote and gap.priority != "P0" and domain_for(gap.id) == BIASED_DOMAIN
        return (int(penalty), gap.priority_rank, second(gap))

    return key


def _tiebreak(gaps: Sequence[Gap], request: PickRequest, order: str) -> Callable[[Gap], int]:
    """The key that orders gaps of equal penalty and priority (declared order breaks ties)."""
    if order == "effort":
        return attrgetter("effort_rank")
    if order == "critical-path":
        lengths = critical_path_lengths(gaps, request.done_ids)
        return lambda gap: -lengths.get(gap.id, 0)
    return lambda gap: 0


def _infra_demoted(request: PickRequest) -> bool:
    """True when strictly more than ``bias_threshold`` of the recent done window is INFRA."""
    window = request.recently_done[: max(request.bias_window, 0)]
    if not window:
        return False
    infra = sum(1 for gap_id in window if domain_for(gap_id) == BIASED_DOMAIN)
    return infra / len(window) > request.bias_threshold


def kind_filter(kind: str) -> Callable[[str], bool]:
    if kind == "user":
        return lambda gap_kind: gap_kind in ("", "user")
    if kind == "system":
        return lambda gap_kind: gap_kind == "system"
    if kind == "any":
        return lambda gap_kind: True
    raise ValueError(f"unknown kind filter {kind!r} (valid: {', '.join(KIND_FILTERS)})")
