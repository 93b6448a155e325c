"""The picker: reference batch and single-gap rules, INFRA bias, critical-path order, plugin."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Sequence

import pluggy
import pytest

import pytest_chump.hookspecs
from pytest_chump import PROJECT_NAME
from pytest_chump.core.model import Gap
from pytest_chump.core.records import PickRequest
from pytest_chump.pick import plugin as builtin_picker
from pytest_chump.pick.picker import (
    critical_path_lengths,
    pick,
    pick_gap,
    pickable_gaps,
    recently_done_ids,
)


def g(
    id: str,
    prio: str = "P1",
    effort: str = "m",
    status: str = "open",
    deps: Sequence[str] = (),
    kind: str = "user",
    closed: str = "",
) -> Gap:
    return Gap(
        id,
        priority=prio,
        effort=effort,
        status=status,
        depends_on=tuple(deps),
        kind=kind,
        closed_date=closed,
    )


def ids(gaps: Sequence[Gap]) -> list[str]:
    return [gap.id for gap in gaps]


# --- batch picker (pickable_gaps) ------------------------------------------------------

BATCH_CASES = [
    pytest.param([], 5, (), [], id="empty-input"),
    pytest.param([g("A"), g("B")], 0, (), [], id="n-zero"),
    pytest.param([g("A"), g("B")], -1, (), [], id="n-negative"),
    pytest.param(
        [g("A", "P2"), g("B", "P1"), g("C", "P0"), g("D", "P1"), g("E", "P0"), g("F", "P2")],
        10,
        (),
        ["C", "E", "B", "D", "A", "F"],
        id="p0-p1-p2-stable",
    ),
    pytest.param(
        [g("A", "P3"), g("B", "P4"), g("C", "P1", "xl"), g("D", status="done"), g("E", "P2")],
        10,
        (),
        ["E"],
        id="skips-p3-p4-xl-done",
    ),
    pytest.param(
        [g("A", status="in_progress"), g("B", status="perpetual"), g("C", "")],
        10,
        (),
        [],
        id="only-open-and-known-priority",
    ),
    pytest.param([g("A"), g("B"), g("C")], 2, (), ["A", "B"], id="first-n"),
    pytest.param([g("A", "P2"), g("B", "P0")], 1, (), ["B"], id="first-n-after-sort"),
    pytest.param([g("A", deps=["X"])], 5, (), [], id="unmet-dep"),
    pytest.param([g("A", deps=["X"])], 5, ("X",), ["A"], id="met-dep"),
    pytest.param([g("A", deps=["X", "Y"])], 5, ("X",), [], id="one-of-two-deps-unmet"),
    pytest.param([g("A", deps=["X", "Y"])], 5, ("X", "Y"), ["A"], id="all-deps-met"),
    pytest.param(
        [g("A", "P2", effort="xs"), g("B", "P2", effort="l")],
        5,
        (),
        ["A", "B"],
        id="effort-ignored-by-batch",
    ),
]


@pytest.mark.parametrize(("gaps", "n", "done", "expected"), BATCH_CASES)
def test_pickable_gaps(gaps: list[Gap], n: int, done: tuple[str, ...], expected: list[str]) -> None:
    assert ids(pickable_gaps(gaps, n, done)) == expected


def test_chain_is_unblocked_step_by_step() -> None:
    chain = [g("C", deps=["B"]), g("B", deps=["A"]), g("A"), g("D", deps=["A", "B"])]
    done: set[str] = set()
    steps = []
    for _ in range(4):
        remaining = [gap for gap in chain if gap.id not in done]  # the backlog marks them done
        picked = ids(pickable_gaps(remaining, 10, done))
        steps.append(picked)
        done.update(picked[:1])
    assert steps == [["A"], ["B"], ["C", "D"], ["D"]]


# --- single-gap policy picker (pick_gap) -----------------------------------------------


def picked_id(gaps: Sequence[Gap], **kwargs: object) -> str | None:
    args: dict[str, object] = {"done_ids": (), "live_claimed": (), "active_count": 0}
    args |= {"capacity": 3} | kwargs
    gap = pick_gap(gaps, **args)  # type: ignore[arg-type]
    return None if gap is None else gap.id


PICK_GAP_CASES = [
    pytest.param([g("A")], {"active_count": 3}, None, id="capacity-full"),
    pytest.param([g("A")], {"active_count": 4}, None, id="over-capacity"),
    pytest.param([g("A")], {"active_count": 2}, "A", id="below-capacity"),
    pytest.param([g("A")], {"capacity": 0}, None, id="zero-capacity"),
    pytest.param([], {}, None, id="empty"),
    pytest.param([g("A"), g("B")], {"live_claimed": ("A", "B")}, None, id="all-claimed"),
    pytest.param([g("A"), g("B")], {"live_claimed": ("A",)}, "B", id="skips-claimed"),
    pytest.param([g("A", "P1", "xs"), g("B", "P0", "l")], {}, "B", id="priority-beats-effort"),
    pytest.param([g("A", effort="l"), g("B", effort="s")], {}, "B", id="effort-within-priority"),
    pytest.param([g("A", effort="?"), g("B", effort="xl")], {}, "B", id="unknown-effort-last"),
    pytest.param([g("A", effort="m"), g("B", effort="m")], {}, "A", id="tie-keeps-declared"),
    pytest.param([g("A", status="perpetual")], {}, "A", id="perpetual-eligible"),
    pytest.param([g("A", status="done"), g("B", status="blocked")], {}, None, id="done-blocked"),
    pytest.param([g("A", "P4", "xl")], {}, "A", id="any-priority-and-xl"),
    pytest.param([g("A", "P9"), g("B", "P3")], {}, "B", id="unknown-priority-last"),
    pytest.param([g("A", deps=["X"]), g("B", "P2")], {}, "B", id="unmet-dep"),
    pytest.param([g("A", deps=["X"]), g("B", "P2")], {"done_ids": ("X",)}, "A", id="met-dep"),
    pytest.param([g("A", kind="system"), g("B", kind="")], {}, "B", id="user-takes-empty"),
    pytest.param([g("A", kind="system")], {}, None, id="user-skips-system"),
    pytest.param([g("A"), g("B", kind="system")], {"kind": "system"}, "B", id="system"),
    pytest.param([g("A", "P2"), g("B", "P1", kind="system")], {"kind": "any"}, "B", id="any"),
]


@pytest.mark.parametrize(("gaps", "kwargs", "expected"), PICK_GAP_CASES)
def test_pick_gap(gaps: list[Gap], kwargs: dict[str, object], expected: str | None) -> None:
    assert picked_id(gaps, **kwargs) == expected


# --- INFRA bias ------------------------------------------------------------------------

BIAS_GAPS = [g("INFRA-1", effort="xs"), g("APP-1", effort="l")]
NINE_OF_TEN = ("INFRA-10",) * 9 + ("APP-9",)
EIGHT_OF_TEN = ("INFRA-10",) * 8 + ("APP-9",) * 2

BIAS_CASES = [
    pytest.param(BIAS_GAPS, (), {}, "INFRA-1", id="no-history"),
    pytest.param(BIAS_GAPS, NINE_OF_TEN, {}, "APP-1", id="90pct-demotes"),
    pytest.param(BIAS_GAPS, EIGHT_OF_TEN, {}, "INFRA-1", id="exactly-80pct-keeps"),
    pytest.param(BIAS_GAPS, ("INFRA-2",), {}, "APP-1", id="one-of-one"),
    pytest.param(
        [g("INFRA-1", "P0", "xs"), g("APP-1", "P0", "l")],
        NINE_OF_TEN,
        {},
        "INFRA-1",
        id="p0-infra-never-demoted",
    ),
    pytest.param(
        [g("APP-1", "P1"), g("INFRA-1", "P0")], NINE_OF_TEN, {}, "INFRA-1", id="p0-infra-first"
    ),
    pytest.param(
        [g("INFRA-1", "P1"), g("APP-1", "P3")],
        NINE_OF_TEN,
        {},
        "APP-1",
        id="demoted-after-lower-priority",
    ),
    pytest.param(BIAS_GAPS, ("APP-1",) * 3 + NINE_OF_TEN, {}, "INFRA-1", id="window-newest-first"),
    pytest.param(
        BIAS_GAPS, NINE_OF_TEN + ("APP-1",) * 20, {}, "APP-1", id="older-than-window-ignored"
    ),
    pytest.param(BIAS_GAPS, ("INFRA-3", "APP-3"), {"bias_window": 1}, "APP-1", id="window-size-1"),
    pytest.param(BIAS_GAPS, NINE_OF_TEN, {"bias_window": 0}, "INFRA-1", id="window-zero"),
    pytest.param(
        BIAS_GAPS, EIGHT_OF_TEN, {"bias_threshold": 0.5}, "APP-1", id="threshold-configurable"
    ),
    pytest.param(BIAS_GAPS, ("infra-2",) * 10, {}, "APP-1", id="prefix-case-insensitive"),
]


@pytest.mark.parametrize(("gaps", "recent", "kwargs", "expected"), BIAS_CASES)
def test_infra_bias(
    gaps: list[Gap], recent: tuple[str, ...], kwargs: dict[str, object], expected: str
) -> None:
    assert picked_id(gaps, recently_done=recent, **kwargs) == expected


def test_infra_bias_applies_to_general_pick() -> None:
    gaps = [g("INFRA-1", "P1"), g("INFRA-2", "P0"), g("APP-1", "P2")]
    request = PickRequest(slots=3, order="declared", recently_done=NINE_OF_TEN)
    assert ids(pick(gaps, request)) == ["INFRA-2", "APP-1", "INFRA-1"]


RECENT_CASES = [
    pytest.param([], (), id="empty"),
    pytest.param(
        [
            g("A", status="done", closed="2026-01-02"),
            g("B", status="open", closed="2026-12-31"),
            g("C", status="done", closed="2026-03-01"),
            g("D", status="done"),
            g("E", status="done", closed="2026-01-02"),
            g("F", status="done"),
            g("G", status="done", closed="2025-12-31"),
        ],
        ("C", "A", "E", "G", "D", "F"),
        id="closed-date-desc-undated-last-stable",
    ),
]


@pytest.mark.parametrize(("gaps", "expected"), RECENT_CASES)
def test_recently_done_ids(gaps: list[Gap], expected: tuple[str, ...]) -> None:
    assert recently_done_ids(gaps) == expected


# --- general pick: order, kind, busy ----------------------------------------------------

CHAIN = [
    g("A"),  # nobody depends on it
    g("B"),  # C -> B, D -> C: chain of 2
    g("C", deps=["B"]),
    g("D", deps=["C"]),
    g("E"),  # F -> E: chain of 1
    g("F", deps=["E"]),
]

PICK_CASES = [
    pytest.param(CHAIN, {}, ["B", "E", "A"], id="longest-chain-first"),
    pytest.param(CHAIN, {"order": "declared"}, ["A", "B", "E"], id="declared-ignores-chains"),
    pytest.param(
        [g("A", effort="l"), g("B", effort="xs"), g("C", effort="?")],
        {"order": "effort"},
        ["B", "A", "C"],
        id="effort-order",
    ),
    pytest.param(
        [g("A"), g("B"), g("X", deps=["A"]), g("Y", deps=["B"])],
        {},
        ["A", "B"],
        id="equal-chains-keep-declared",
    ),
    pytest.param(
        [g("A"), g("B"), g("X", status="done", deps=["A"]), g("Y", deps=["B"])],
        {},
        ["B", "A"],
        id="done-dependent-does-not-count",
    ),
    pytest.param(
        [g("A"), g("B"), g("X", deps=["A"]), g("Y", deps=["B"])],
        {"done_ids": frozenset({"X"})},
        ["B", "A"],
        id="dependent-in-done-ids-does-not-count",
    ),
    pytest.param(
        [g("A", "P2"), g("B", "P1"), g("C", "P3", deps=["A"]), g("D", "P3", deps=["C"])],
        {},
        ["B", "A"],
        id="priority-beats-chain",
    ),
    pytest.param(
        [g("A"), g("B"), g("C", status="blocked", deps=["B"])],
        {},
        ["B", "A"],
        id="any-non-done-dependent-counts",
    ),
    pytest.param(CHAIN, {"busy_ids": frozenset({"B", "A"})}, ["E"], id="busy-excluded"),
    pytest.param(CHAIN, {"slots": 1}, ["B"], id="slots-limit"),
    pytest.param(CHAIN, {"slots": 0}, [], id="slots-zero"),
    pytest.param(
        [g("A", kind=""), g("B", kind="system"), g("C")],
        {"kind": "user"},
        ["A", "C"],
        id="kind-user",
    ),
    pytest.param(
        [g("A", kind=""), g("B", kind="system"), g("C")],
        {"kind": "system"},
        ["B"],
        id="kind-system",
    ),
    pytest.param(
        [g("A", kind=""), g("B", kind="system"), g("C")],
        {"kind": "any"},
        ["A", "B", "C"],
        id="kind-any",
    ),
    pytest.param(
        [g("A", status="perpetual"), g("B", status="blocked")],
        {"statuses": frozenset({"perpetual", "blocked"})},
        ["A", "B"],
        id="statuses-configurable",
    ),
    pytest.param([g("A", "P3"), g("B", effort="xl"), g("C", "P0")], {}, ["C"], id="p0-p2-not-xl"),
]


@pytest.mark.parametrize(("gaps", "fields", "expected"), PICK_CASES)
def test_pick(gaps: list[Gap], fields: dict[str, object], expected: list[str]) -> None:
    request = PickRequest(**{"slots": 3} | fields)  # type: ignore[arg-type]
    assert ids(pick(gaps, request)) == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"kind": "robot"}, "unknown kind filter"), ({"order": "random"}, "unknown picker order")],
)
def test_pick_rejects_unknown_filters(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pick([g("A")], PickRequest(slots=1, **fields))  # type: ignore[arg-type]


# --- critical path lengths -------------------------------------------------------------


def test_chain_lengths() -> None:
    lengths = critical_path_lengths(CHAIN, ())
    assert lengths == {"A": 0, "B": 2, "C": 1, "D": 0, "E": 1, "F": 0}


def test_unknown_and_duplicate_deps_are_harmless() -> None:
    gaps = [g("A"), g("B", deps=["A", "A", "MISSING"])]
    assert critical_path_lengths(gaps, ()) == {"A": 1, "B": 0}


def test_cycle_does_not_hang() -> None:
    gaps = [g("A", deps=["B"]), g("B", deps=["A"]), g("C", deps=["C"]), g("D"), g("E", deps=["D"])]
    lengths = critical_path_lengths(gaps, ())
    assert set(lengths) == {"A", "B", "C", "D", "E"}
    assert (lengths["D"], lengths["E"]) == (1, 0)
    assert ids(pick(gaps, PickRequest(slots=5))) == ["D"]


def test_long_chain_needs_no_recursion() -> None:
    n = 20_000
    gaps = [g(f"G-{i}", deps=[f"G-{i - 1}"] if i else ()) for i in range(n)]
    lengths = critical_path_lengths(gaps, ())
    assert (lengths["G-0"], lengths[f"G-{n - 1}"]) == (n - 1, 0)


def random_dag(n: int, rng: random.Random) -> list[Gap]:
    gaps = []
    for i in range(n):
        deps = {f"G-{rng.randrange(i)}" for _ in range(rng.randint(0, 3))} if i else set()
        status = "done" if rng.random() < 0.3 else rng.choice(["open", "open", "blocked"])
        gaps.append(g(f"G-{i}", f"P{rng.randrange(4)}", status=status, deps=sorted(deps)))
    rng.shuffle(gaps)
    return gaps


def naive_lengths(gaps: Sequence[Gap], done: frozenset[str]) -> dict[str, int]:
    by_id = {gap.id: gap for gap in gaps}
    open_ids = {i for i, gap in by_id.items() if i not in done and gap.status != "done"}

    @functools.cache
    def length(gap_id: str) -> int:
        dependents = [o for o in open_ids if gap_id in by_id[o].depends_on]
        return max((1 + length(o) for o in dependents), default=0)

    return {gap_id: length(gap_id) for gap_id in by_id}


@pytest.mark.parametrize("seed", range(8))
def test_critical_path_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    gaps = random_dag(60, rng)
    done = frozenset(gap.id for gap in gaps if rng.random() < 0.1)
    assert critical_path_lengths(gaps, done) == naive_lengths(gaps, done)


def test_large_random_backlog() -> None:
    gaps = random_dag(20_000, random.Random(0))
    done = frozenset(gap.id for gap in gaps if gap.status == "done")
    start = time.process_time()  # CPU time: other tests running at once do not change it
    picked = pick(gaps, PickRequest(slots=8, done_ids=done))
    spent = time.process_time() - start
    assert spent < 1.0, f"critical-path pick took {spent:.2f} s of CPU"
    lengths = critical_path_lengths(gaps, done)
    eligible = pickable_gaps(gaps, len(gaps), done)  # stable: declared order within a tier
    expected = sorted(eligible, key=lambda gap: (gap.priority_rank, -lengths[gap.id]))[:8]
    assert picked == expected
    assert lengths[picked[0].id] > 1, "the random DAG should have real chains"


# --- the built-in plugin ---------------------------------------------------------------


def test_builtin_plugin_is_the_default_picker() -> None:
    from pytest_chump.core.plugins import get_plugin_manager

    pm = get_plugin_manager(env={})
    request = PickRequest(slots=2)
    assert pm.hook.chump_pick(gaps=CHAIN, request=request) == pick(CHAIN, request)
    assert ids(pm.hook.chump_pick(gaps=CHAIN, request=request)) == ["B", "E"]


def test_builtin_hookimpl_in_a_fresh_manager_is_overridable() -> None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(pytest_chump.hookspecs)
    pm.register(builtin_picker)
    request = PickRequest(slots=1, order="declared")
    assert ids(pm.hook.chump_pick(gaps=CHAIN, request=request)) == ["A"]

    class Override:
        @pytest_chump.hookimpl
        def chump_pick(self, gaps: Sequence[Gap], request: PickRequest) -> list[Gap]:
            return [gaps[-1]]

    pm.register(Override())
    assert ids(pm.hook.chump_pick(gaps=CHAIN, request=request)) == ["F"]


# --- explain agrees with the picker --------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_explain_says_ready_exactly_for_the_gaps_pick_would_take(seed: int) -> None:
    from pytest_chump.pick.explain import Context, why_not

    rng = random.Random(seed)
    gaps = [
        g(
            f"R-{n}",
            prio=rng.choice(["P0", "P1", "P2", "P3", ""]),
            effort=rng.choice(["xs", "s", "m", "xl"]),
            status=rng.choice(["open", "open", "open", "done", "blocked", "shipped"]),
            deps=[f"R-{d}" for d in rng.sample(range(n), min(n, rng.randint(0, 2)))],
            kind=rng.choice(["user", "system", ""]),
        )
        for n in range(40)
    ]
    done = frozenset(x.id for x in gaps if x.status == "done")
    busy = frozenset(rng.sample([x.id for x in gaps], 5))
    for kind in ("user", "system", "any"):
        request = PickRequest(slots=len(gaps), done_ids=done, busy_ids=busy, kind=kind)
        picked = {x.id for x in pick(gaps, request)}
        ctx = Context({x.id: x for x in gaps}, done, busy, kind=kind)
        assert {x.id for x in gaps if why_not(x, ctx) is None} == picked
