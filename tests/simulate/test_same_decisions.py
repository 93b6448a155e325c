"""The simulated loop and the real loop make the same decisions on the same event sequence.

The simulator runs a backlog on virtual time; the order in which its agents finish, and how,
is the event sequence. A real ``chump dispatch --watch`` then runs the same backlog with the
same settings — real git repositories, real agent processes, the git provider — while the
test releases its agents in that order, each as the simulation says it ended (shipping, or
crashing), one at a time. What each loop dispatched and concluded, in order, must be equal.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_chump.loop.app import App
from pytest_chump.simulate.model import CRASH, SHIP, Backend, Model
from pytest_chump.simulate.run import simulate
from tests.gitrepos import repo  # noqa: F401  (fixture)
from tests.waiting import until

FIVE = """\
gaps:
  - {id: Q-1, priority: P1, effort: s}
  - {id: Q-2, priority: P1, effort: m, depends_on: [Q-1]}
  - {id: Q-3, priority: P2, effort: xs}
  - {id: Q-4, priority: P1, effort: s, depends_on: [Q-3]}
  - {id: Q-5, priority: P0, effort: l}
"""
DECISIONS = ("dispatched", "outcome")


def decisions(lines: list[str]) -> list[tuple[str, str, str]]:
    """(event, gap, outcome) of each dispatch and outcome, in order."""
    events = [json.loads(line) for line in lines if line.strip()]
    return [
        (e["event"], e["gap_id"], e.get("outcome", "")) for e in events if e["event"] in DECISIONS
    ]


@pytest.mark.slow
def test_the_real_loop_decides_as_the_simulated_one(repo: Path, tmp_path: Path) -> None:
    (repo / "docs/gaps.yaml").write_text(FIVE)
    settings = App.create({"repo_root": str(repo)}).settings
    flaky = Backend(1.0, {SHIP: 0.7, CRASH: 0.3})
    model = Model(seed=3, backends={"script": flaky})
    told = io.StringIO()
    simulate(
        App.create({"repo_root": str(repo)}).load_backlog(),
        slots=settings.max_parallel,
        model=model,
        base=settings,
        events=told,
    )
    expected = decisions(told.getvalue().splitlines())
    ended = [(gap, outcome) for event, gap, outcome in expected if event == "outcome"]
    assert {outcome for _, outcome in ended} == {"shipped", "killed"}  # both paths are taken
    assert len(ended) == 4  # a crash left its dependent undispatched

    gates, log = tmp_path / "gates", tmp_path / "events.jsonl"
    gates.mkdir()
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest_chump.cli", "dispatch", "--no-dry-run", "--watch",
         "--events", str(log)],
        cwd=repo,
        env={**os.environ, "AGENT_MODE": "gates", "AGENT_GATES": str(gates)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:

        def seen() -> list[tuple[str, str, str]]:
            return decisions(log.read_text().splitlines()) if log.exists() else []

        for gap, outcome in ended:  # release the agents one by one, in the simulated order
            assert until(lambda gap=gap: ("dispatched", gap, "") in seen()), (gap, seen())
            (gates / gap).write_text("ship" if outcome == "shipped" else "fail")
            assert until(lambda gap=gap: any(e[:2] == ("outcome", gap) for e in seen()), 60)
        assert run.wait(timeout=120) == 0, run.stderr.read() if run.stderr else ""
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert seen() == expected
