"""The simulator: the real loop on virtual time over a seeded model — deterministic, a lower
bound that holds, the reference rounds as a baseline, and loop decisions made at the times
the real loop would make them."""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from pathlib import Path

import pytest

from pytest_chump.core.model import Gap
from pytest_chump.core.records import Backlog
from pytest_chump.simulate.backlogs import generate
from pytest_chump.simulate.model import CRASH, HANG, SHIP, Backend, Model
from pytest_chump.simulate.reference import reference_rounds
from pytest_chump.simulate.run import (
    attempt_result,
    attempt_slot_time,
    critical_path,
    settings_for,
    simulate,
)


def _settings(slots: int = 4):  # type: ignore[no-untyped-def]
    return settings_for(Path(tempfile.mkdtemp()), slots, "declared", ("claude",))


def test_the_same_seed_gives_the_same_run() -> None:
    backlog = generate(30, 0.6, seed=3)
    first = simulate(backlog, slots=3, model=Model(seed=5)).as_dict()
    again = simulate(backlog, slots=3, model=Model(seed=5)).as_dict()
    other = simulate(backlog, slots=3, model=Model(seed=6)).as_dict()
    for run in (first, again, other):
        run.pop("wall_s")
    assert first == again
    assert first != other


def test_draws_do_not_depend_on_who_asks_first() -> None:
    model = Model(seed=1)
    a = model.draw("G-1", "m", "claude", 1)
    model.draw("G-2", "s", "codex", 1)
    assert model.draw("G-1", "m", "claude", 1) == a
    assert model.draw("G-1", "m", "claude", 2) != a
    assert {Model(seed=1, failures=False).draw(f"G-{i}", "s", "claude", 1).result
            for i in range(200)} == {SHIP}  # fmt: skip


def test_generated_backlogs_are_dags_of_pickable_gaps() -> None:
    backlog = generate(300, 1.5, seed=2)
    ids = [g.id for g in backlog.gaps]
    assert len(set(ids)) == 300
    for index, gap in enumerate(backlog.gaps):
        assert all(ids.index(dep) < index for dep in gap.depends_on)
        assert gap.priority in {"P0", "P1", "P2"}
        assert gap.effort in {"xs", "s", "m", "l"}
    mean = sum(len(g.depends_on) for g in backlog.gaps) / 300
    assert 1.2 < mean < 1.8
    assert generate(0).gaps == ()


@pytest.mark.parametrize("order", ["declared", "critical-path"])
def test_everything_ships_when_nothing_fails_and_the_bound_holds(order: str) -> None:
    backlog = generate(40, 0.8, seed=4)
    run = simulate(backlog, slots=4, model=Model(seed=4, failures=False), order=order)
    assert run.outcomes == {"shipped": 40}
    assert run.shipped == run.dispatches == 40
    assert run.makespan_s >= run.lower_bound_s
    assert 1.0 <= run.ratio < 1.2
    assert 0.8 < run.utilisation <= 1.0
    bars = run.history["timeline"]["bars"]  # type: ignore[index]
    assert len(bars) == 40
    assert max(bar["lane"] for bar in bars) == 3  # four slots, all used


def test_failures_are_reacted_to_as_in_a_real_run() -> None:
    flaky = Backend(1.0, {SHIP: 0.5, "ci-fail": 0.5})
    model = Model(seed=2, backends={"claude": flaky}, retry_lift=0.0)
    run = simulate(generate(30, 0.0, seed=2), slots=4, model=model)
    assert set(run.outcomes) == {"shipped", "ci_failed"}
    assert run.dispatches > 30  # checks failed: the gap was tried again (retries = 2)
    assert run.dispatches <= 3 * 30
    hung = Model(seed=2, backends={"claude": Backend(1.0, {HANG: 1.0})})
    stuck = simulate(generate(2, 0.0, seed=2), slots=2, model=hung)
    assert stuck.outcomes == {"killed": 2}  # the deadline ladder stopped them
    s = _settings(2)
    assert stuck.makespan_s >= 2 * s.soft_deadline("xs")
    crash = Model(seed=2, backends={"claude": Backend(1.0, {CRASH: 1.0})})
    assert simulate(generate(3, 0.0, seed=2), slots=1, model=crash).outcomes == {"killed": 3}


def test_an_agent_that_opens_its_pr_last_and_exits_late_still_ships() -> None:
    slow = Model(seed=1, failures=False, sigma=0.0, backends={"claude": Backend(3.0)})
    gap = Gap("LATE-1", priority="P1", effort="s")  # median 30 min here, soft deadline 20
    run = simulate(Backlog(Path("<late>"), (gap,)), slots=1, model=slow)
    assert run.outcomes == {"shipped": 1}


def test_the_reference_rounds_wait_for_their_slowest_gap() -> None:
    backlog = generate(12, 0.0, seed=9)
    model = Model(seed=9, failures=False)
    s = _settings(4)
    ref = reference_rounds(backlog, s, model)
    bars = ref.history["timeline"]["bars"]  # type: ignore[index]
    rounds: dict[float, list[dict[str, float]]] = {}
    for bar in bars:
        rounds.setdefault(bar["start"], []).append(bar)
    assert [len(r) for r in rounds.values()] == [4, 4, 4]
    starts = sorted(rounds)
    for before, after in itertools.pairwise(starts):
        assert after == max(b["end"] for b in rounds[before])  # the slowest ends the round
    ours = simulate(backlog, slots=4, model=model, order="declared")
    assert ours.makespan_s < ref.makespan_s
    assert ref.ratio >= 1.0


def test_critical_path_weighs_the_heaviest_chain() -> None:
    gaps = (
        Gap("A"),
        Gap("B", depends_on=("A",)),
        Gap("C", depends_on=("A",)),
        Gap("D", depends_on=("B", "C")),
    )
    weights = {"A": 1.0, "B": 5.0, "C": 2.0, "D": 1.0}
    assert critical_path(gaps, weights) == 7.0
    assert critical_path((), {}) == 0.0


def test_two_backends_are_routed_the_same_way_every_time() -> None:
    backlog = generate(40, 0.5, seed=8)
    runs = [
        simulate(backlog, slots=3, model=Model(seed=8), backends=("claude", "codex")).as_dict()
        for _ in range(2)
    ]
    for run in runs:
        run.pop("wall_s")
    assert runs[0] == runs[1]


def test_a_simulation_tells_nobody(tmp_path: Path) -> None:
    """The repository's notifiers (and third-party plugins) never hear of simulated events."""
    told = tmp_path / "told.jsonl"
    script = f"import sys; open({str(told)!r}, 'a').write(sys.stdin.read())"
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.chump.notify]\ncommand = ["{sys.executable}", "-c", {json.dumps(script)}]\n'
    )
    from pytest_chump.loop.app import App

    base = App.create({"repo_root": str(tmp_path)}).settings
    assert base.notify  # configured
    run = simulate(generate(3, 0.0, seed=1), slots=2, model=Model(failures=False), base=base)
    assert run.shipped == 3
    from pytest_chump.reflect.notify import wait

    wait()  # deliveries run on threads of their own: any would be done now
    assert not told.exists()


def test_the_bound_is_what_the_work_takes_not_what_the_slot_held() -> None:
    """One shipping gap: the work is its agent's drawn duration and the merge; the slot
    holds it until the next poll sees the merge too. The bound counts the work only."""
    model = Model(seed=3, failures=False, merge_delay_s=100.0)  # polls every 30 s
    gap = Gap("ONE-1", priority="P1", effort="s")
    run = simulate(Backlog(Path("<one>"), (gap,)), slots=1, model=model)
    work = model.draw("ONE-1", "s", "claude", 1).duration_s + model.merge_delay_s
    assert run.lower_bound_s == pytest.approx(work)
    assert run.work_s == pytest.approx(work)
    assert run.makespan_s == pytest.approx(run.measured_slot_s)  # one gap: its slot is the run
    assert 10 < run.makespan_s - work <= _settings(1).poll_interval  # the merge, seen at a poll
    assert run.ratio > 1.0
    assert run.as_dict()["slot_s"] == round(run.makespan_s, 3)


def test_an_ideal_loop_holds_each_attempt_as_decide_would() -> None:
    """The work of an attempt past its deadlines is what the ladder leaves of it."""
    s = _settings(1)
    soft = s.soft_deadline("s")

    def held(result: str, duration: float) -> float:
        backend = Backend(duration / 600.0, {result: 1.0})
        model = Model(seed=0, sigma=0.0, backends={"claude": backend})
        gap = Gap("H-1", effort="s")  # median 10 min: speed scales it to ``duration``
        assert attempt_result(model, s, gap, "claude", 1) in (result, HANG)
        return attempt_slot_time(model, s, gap, "claude", 1)

    assert held(SHIP, 600) == pytest.approx(600 + 120)  # and its merge
    assert held(SHIP, 2.5 * soft) == pytest.approx(2 * soft + 1)  # stopped before it shipped
    assert held(HANG, 60) == pytest.approx(2 * soft + 1)
    assert held("no-pr", 60) == pytest.approx(60 + s.exit_grace)  # stalled after the grace
    assert held("no-pr", soft - 10) == pytest.approx(soft)  # ... or at the soft deadline
    assert held("no-pr", 1.5 * soft) == pytest.approx(1.5 * soft)  # ... or at once, past it
    assert held("ci-fail", 300) == pytest.approx(300)


@pytest.mark.parametrize("seed", range(6))
def test_the_bound_holds_with_failures_retries_and_hangs(seed: int) -> None:
    flaky = Backend(1.0, {SHIP: 0.5, "ci-fail": 0.2, CRASH: 0.1, "no-pr": 0.1, HANG: 0.1})
    model = Model(seed=seed, sigma=0.9, backends={"claude": flaky})
    run = simulate(generate(25, 0.8, seed=seed), slots=3, model=model)
    assert run.makespan_s >= run.lower_bound_s
    assert run.work_s <= run.measured_slot_s  # the slots held the work, and the loop's delays
    assert run.utilisation <= 1.0
