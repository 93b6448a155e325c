"""The simulated loop and the real loop make the same decisions on the same event sequence.

The simulator runs a backlog on virtual time, with agents whose results and durations are
scripted; the order in which they end, and how, is the event sequence. A real ``chump
dispatch --watch`` then runs the same backlog with the same settings — real git
repositories, real agent processes, the git provider and its merge gate — while the test
releases its agents in that order, each as the simulation says it ended: shipping
(committing work the gate merges), failing the gate's check (a ``ci_failed`` that is
retried with feedback), crashing, or hanging until the deadline ladder stops it. What each
loop dispatched (gap and attempt) and concluded, in order, must be equal — and equal to the
sequence written out below, so a picker order changed in both loops fails too.

The backlog tells the picker orders apart: declared order starts Q-A and Q-B first, critical
path starts Q-C (two gaps wait on it) and Q-A, and later prefers Q-C's retry to Q-H.

A hang is a real agent that never exits, and the default deadlines are minutes, so its gap
is the only one of effort ``xs`` and ``xs`` has a soft deadline of 1 s: the ladder stops it
2 s after its start (both loops). The other efforts keep their deadlines of minutes, so
agents waiting to be released are never stopped (``deadline_scale`` would shrink theirs too).

Before releasing an agent the test waits until the real loop has settled (every lease is a
dispatch at work): a worktree still being removed on a worker keeps its gap's lease, and
with it its retry, which the simulation (no workspaces) never waits for.

Starts running at the same time are announced in the order git finishes them (see
``loop/workers.py``), so the order within a run of consecutive ``dispatched`` events is not
compared; which gaps they are is.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_chump.loop.app import App
from pytest_chump.simulate.model import CI_FAIL, CRASH, HANG, SHIP, Draw, Model
from pytest_chump.simulate.run import simulate
from tests.gitrepos import PYPROJECT, git, make_origin
from tests.waiting import until

BACKLOG = """\
gaps:
  - {id: Q-A, priority: P1, effort: s}
  - {id: Q-B, priority: P1, effort: s}
  - {id: Q-H, priority: P1, effort: xs}
  - {id: Q-C, priority: P1, effort: m}
  - {id: Q-D, priority: P1, effort: s, depends_on: [Q-C]}
  - {id: Q-E, priority: P1, effort: s, depends_on: [Q-D]}
"""
CHECK = (
    "import pathlib, sys\n"
    "bad = sorted(p.name for p in pathlib.Path('.').glob('*.txt') if 'broken' in p.read_text())\n"
    "print('FAILED: ' + ', '.join(bad) if bad else 'passed')\n"
    "sys.exit(1 if bad else 0)\n"
)
SETTINGS = f"""\

[tool.chump.deadlines]
xs = "1s"

[tool.chump.merge_gate]
command = ["{sys.executable}", "-c", {json.dumps(CHECK)}]
"""
# (gap, attempt) -> what the agent does, and after how many (virtual) minutes
SCRIPT = {
    ("Q-C", 1): (CI_FAIL, 10),
    ("Q-C", 2): (SHIP, 15),
    ("Q-A", 1): (SHIP, 20),
    ("Q-B", 1): (CRASH, 3),
    ("Q-H", 1): (HANG, 1),
    ("Q-D", 1): (SHIP, 5),
    ("Q-E", 1): (SHIP, 5),
}
MODE = {SHIP: "commit", CI_FAIL: "break", CRASH: "fail"}  # a hang is never released
EXPECTED = [
    ("dispatched", "Q-A", "1"),  # with Q-C: the two slots, filled at once
    ("dispatched", "Q-C", "1"),
    ("outcome", "Q-C", "ci_failed"),  # its lease is still held: the slot goes to Q-B
    ("dispatched", "Q-B", "1"),
    ("outcome", "Q-B", "killed"),
    ("dispatched", "Q-C", "2"),  # the retry, before Q-H (critical path)
    ("outcome", "Q-A", "shipped"),
    ("dispatched", "Q-H", "1"),
    ("outcome", "Q-H", "killed"),  # the ladder stopped it
    ("outcome", "Q-C", "shipped"),
    ("dispatched", "Q-D", "1"),
    ("outcome", "Q-D", "shipped"),
    ("dispatched", "Q-E", "1"),
    ("outcome", "Q-E", "shipped"),
]
Decision = tuple[str, str, str]


@dataclass(frozen=True)
class Scripted(Model):
    """Agents that do what ``script`` says, whatever the seed."""

    script: dict[tuple[str, int], tuple[str, float]] = field(default_factory=dict)

    def draw(self, gap_id: str, effort: str, backend: str, attempt: int) -> Draw:
        result, minutes = self.script[(gap_id, attempt)]
        return Draw(result, minutes * 60.0)


def decisions(lines: list[str]) -> list[Decision]:
    """(event, gap, attempt or outcome) of each dispatch and outcome, in order; within a run
    of consecutive dispatches, sorted (see the module docstring)."""
    out: list[Decision] = []
    started: list[Decision] = []
    for event in (json.loads(line) for line in lines if line.strip()):
        if event["event"] == "dispatched":
            started.append(("dispatched", event["gap_id"], str(event["attempt"])))
        elif event["event"] == "outcome":
            out += [*sorted(started), ("outcome", event["gap_id"], event["outcome"])]
            started = []
    return out + sorted(started)


def causes(lines: list[str]) -> dict[tuple[str, str], str]:
    """(gap, outcome) -> the cause the loop gave it."""
    events = [json.loads(line) for line in lines if line.strip()]
    return {(e["gap_id"], e["outcome"]): e.get("cause") for e in events if e["event"] == "outcome"}


def simulated(repo: Path, order: str | None = None) -> list[str]:
    """The simulation's events, one JSON line each."""
    app = App.create({"repo_root": str(repo)})
    told = io.StringIO()
    simulate(
        app.load_backlog(),
        slots=app.settings.max_parallel,
        model=Scripted(script=SCRIPT),
        base=app.settings,
        order=order,
        events=told,
    )
    return told.getvalue().splitlines()


def settled(db: Path) -> bool:
    """Every lease is a dispatch at work: no start half-recorded, no teardown pending."""
    try:
        with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=1)) as conn:
            leased = {row[0] for row in conn.execute("SELECT gap_id FROM leases")}
            working = "SELECT gap_id FROM dispatches WHERE outcome IS NULL"
            return leased == {row[0] for row in conn.execute(working)}
    except sqlite3.Error:  # not created yet, or busy
        return False


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _, clone = make_origin(tmp_path)
    (clone / "docs/gaps.yaml").write_text(BACKLOG)
    pyproject = PYPROJECT.replace(
        "[tool.chump]\n", '[tool.chump]\npicker_order = "critical-path"\n'
    )
    (clone / "pyproject.toml").write_text(pyproject + SETTINGS)
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "backlog")
    git(clone, "push", "--quiet", "origin", "main")
    git(clone, "fetch", "--quiet", "origin")
    return clone


@pytest.mark.slow
def test_the_real_loop_decides_as_the_simulated_one(repo: Path, tmp_path: Path) -> None:
    told = simulated(repo)
    expected = decisions(told)
    assert expected == EXPECTED
    assert causes(told)[("Q-H", "killed")] == "timeout"  # the deadline ladder
    assert causes(told)[("Q-C", "ci_failed")] == "checks-failed"  # retried with feedback
    declared = decisions(simulated(repo, "declared"))
    assert declared[:2] == [("dispatched", "Q-A", "1"), ("dispatched", "Q-B", "1")]

    gates, log, err = tmp_path / "gates", tmp_path / "events.jsonl", tmp_path / "stderr"
    gates.mkdir()
    db = repo / ".chump" / "chump.db"
    with err.open("w") as stderr:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest_chump.cli", "dispatch", "--no-dry-run", "--watch",
             "--events", str(log)],
            cwd=repo,
            env={**os.environ, "AGENT_MODE": "gates", "AGENT_GATES": str(gates)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip

    def seen() -> list[Decision]:
        return decisions(log.read_text().splitlines()) if log.exists() else []

    try:
        attempts: Counter[str] = Counter()
        for n, decision in enumerate(expected):
            event, gap, _ = decision
            if event == "outcome":  # release its agent, once the loop has settled
                assert until(lambda: settled(db), 60), seen()
                attempts[gap] += 1
                mode = MODE.get(SCRIPT[(gap, attempts[gap])][0])
                if mode is not None:
                    (gates / gap).write_text(mode)
            want = expected[: n + 1].count(decision)
            found = until(lambda d=decision, k=want: seen().count(d) >= k, 60)
            assert found, (decision, seen(), err.read_text())
        assert run.wait(timeout=120) == 0, err.read_text()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert seen() == expected
    why = causes(log.read_text().splitlines())
    assert why[("Q-H", "killed")] == "timeout"  # the deadline ladder, as simulated
    assert why[("Q-C", "ci_failed")] == "tests-failed"  # the gate's check failed: retried
