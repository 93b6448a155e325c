"""Reactions to failures, end to end with real git repositories, a real merge gate and
scripted agents: failures go back to the agent with what failed, the last retry holds the
gap for a human until ``chump retry``, transient failures back off and do not count against
the arm, and a backend that is not logged in opens its circuit and ends the run with exit 3.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_chump import hookimpl
from pytest_chump.core.crashpoints import CRASH_ENV
from pytest_chump.core.model import NEUTRAL_CAUSES
from pytest_chump.core.schemas import schema
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.loop.react import CIRCUIT, NEEDS_HUMAN, NONE, RETRY, Chain, backoff, react
from pytest_chump.state.store import Store
from tests.chumpproc import ChumpProcess
from tests.gitrepos import AGENT as SHIP
from tests.gitrepos import PYPROJECT, git, make_origin

PY = sys.executable
AGENT = Path(__file__).parents[1] / "agent_scripts" / "learner.py"
FIXTURES = Path(__file__).parents[2] / "fixtures"
CHECK = (
    "import pathlib, sys\n"
    "bad = sorted(p.stem for p in pathlib.Path('.').glob('*.txt') if 'broken' in p.read_text())\n"
    "for b in bad: print(f'FAILED tests/test_{b}.py::test_{b} - AssertionError: broken')\n"
    "print(f'=== {len(bad)} failed ===' if bad else '=== passed ===')\n"
    "sys.exit(1 if bad else 0)\n"
)


def _project(tmp_path: Path, gaps: str, **settings: str) -> Path:
    _, clone = make_origin(tmp_path)
    extra = "".join(f"{key} = {value}\n" for key, value in settings.items())
    (clone / "docs/gaps.yaml").write_text(gaps)
    head = f'exit_grace = "20s"\nretry_backoff = "50ms"\n{extra}'
    text = PYPROJECT.replace('exit_grace = "20s"\n', head).replace(str(SHIP), str(AGENT))
    gate = f'\n[tool.chump.merge_gate]\ncommand = ["{PY}", "-c", {json.dumps(CHECK)}]\n'
    (clone / "pyproject.toml").write_text(text + gate)
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "backlog")
    git(clone, "push", "--quiet", "origin", "main")
    return clone


class Heard:
    """A ``chump_notify`` plugin keeping what it heard."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    @hookimpl
    def chump_notify(self, event: dict[str, object]) -> None:
        self.events.append(dict(event))


def _run(repo: Path, heard: Heard | None = None) -> tuple[Orchestrator, str]:
    app, out = App.create({"repo_root": str(repo)}), io.StringIO()
    if heard is not None:
        app.pm.register(heard)
    provider = app.provider()
    progress = Progress(out, out)
    progress.events.writers.append(io.StringIO())  # the event stream, as --events writes it
    with Store.for_repo(repo) as store:
        orch = Orchestrator(app, store, app.spawner_factory(), provider, progress)
        provider.notify = orch.wake.set  # type: ignore[attr-defined]
        orch.run()
    return orch, out.getvalue()


def _events(orch: Orchestrator) -> list[dict[str, Any]]:
    """The run's events, each checked against the shipped schema."""
    (writer,) = orch.progress.events.writers
    assert isinstance(writer, io.StringIO)
    events = [json.loads(line) for line in writer.getvalue().splitlines()]
    validator = jsonschema.Draft202012Validator(schema("event"))
    for event in events:
        validator.validate(event)
    return events


@pytest.fixture
def prompts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "prompts"
    folder.mkdir()
    monkeypatch.setenv("AGENT_PROMPTS", str(folder))
    return folder


ONE_GAP = "gaps:\n  - {id: FIX-1, title: fix it, priority: P1, effort: s}\n"


# --- the policy -------------------------------------------------------------------------

LIMITS = {"retries": 2, "retry_transient": 3, "base": 10.0, "cap": 300.0}


@pytest.mark.parametrize(
    ("outcome", "cause", "chain", "kind", "delay"),
    [
        ("shipped", "", Chain(), NONE, 0.0),
        ("ci_failed", "tests-failed", Chain(), RETRY, 0.0),
        ("ci_failed", "checks-failed", Chain(2, 1, 0), RETRY, 0.0),
        ("ci_failed", "merge-conflict", Chain(3, 2, 0), NEEDS_HUMAN, 0.0),
        ("ci_failed", "changes-requested", Chain(3, 2, 5), NEEDS_HUMAN, 0.0),
        ("killed", "rate-limited", Chain(), RETRY, 10.0),
        ("killed", "network", Chain(2, 0, 1), RETRY, 20.0),
        ("killed", "server-error", Chain(3, 0, 2), RETRY, 40.0),
        ("killed", "rate-limited", Chain(4, 0, 3), NONE, 0.0),
        ("killed", "auth", Chain(), CIRCUIT, 0.0),
        ("killed", "quota-exhausted", Chain(2, 1, 1), CIRCUIT, 0.0),
        ("killed", "spawn-failed", Chain(), CIRCUIT, 0.0),
        ("killed", "agent-error", Chain(), NONE, 0.0),
        ("stalled", "unknown", Chain(), NONE, 0.0),
        ("killed", "tests-failed", Chain(), NONE, 0.0),  # only a ci_failed verdict goes back
    ],
)
def test_the_reaction_to_each_cause(
    outcome: str, cause: str, chain: Chain, kind: str, delay: float
) -> None:
    reaction = react(outcome, cause, chain, **LIMITS)
    assert (reaction.kind, reaction.delay) == (kind, delay)
    if kind == RETRY:
        assert reaction.chain is not None
        assert reaction.chain.attempt == chain.attempt + 1


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, 10, 300) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]


def test_transient_and_circuit_causes_are_not_routing_outcomes() -> None:
    assert {"rate-limited", "network", "server-error", "auth", "quota-exhausted"} <= NEUTRAL_CAUSES
    assert "tests-failed" not in NEUTRAL_CAUSES


# --- end to end ---------------------------------------------------------------------------


def test_failed_tests_go_back_to_the_agent_and_the_next_attempt_ships(
    tmp_path: Path, prompts: Path
) -> None:
    repo = _project(tmp_path, ONE_GAP)
    orch, out = _run(repo)
    assert "RETRY: FIX-1 attempt 2 now (tests-failed)" in out, out
    assert "OUTCOME: FIX-1 shipped" in out, out
    first, second = (prompts / "FIX-1.1.txt").read_text(), (prompts / "FIX-1.2.txt").read_text()
    assert "Previous attempt" not in first
    assert "Previous attempt: this is attempt 2" in second
    assert "tests/test_FIX-1.py::test_FIX-1" in second  # the failing test id ...
    assert "=== 1 failed ===" in second  # ... and the end of the check's output
    with Store.for_repo(repo) as store:
        rows = store.dispatches()
        reflections = {r["dispatch_id"]: r for r in store.reflections()}
        assert store.retries() == {}
    assert [(r.attempt, r.outcome, r.cause) for r in rows] == [
        (1, "ci_failed", "tests-failed"),
        (2, "shipped", ""),
    ]
    assert rows[1].previous_id == rows[0].id
    assert rows[0].branch == rows[1].branch  # the same branch: the work goes on
    assert reflections[rows[1].id]["attempt"] == 2
    assert reflections[rows[1].id]["previous_dispatch_id"] == rows[0].id
    assert orch.finisher.counts["shipped"] == 1
    shown = ChumpProcess(repo, "reflections", "--gap", "FIX-1")
    shown.finish()
    attempts = [line.split()[3:5] for line in shown.lines[1:]]
    assert attempts == [["1", "ci_failed"], ["2", "shipped"]]  # in the order they were made


def test_after_the_last_retry_the_gap_waits_for_a_human_until_chump_retry(
    tmp_path: Path, prompts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_MODE", "never")
    repo = _project(tmp_path, ONE_GAP, retries="1")
    heard = Heard()
    orch, out = _run(repo, heard)
    assert "NEEDS-HUMAN: FIX-1: tests-failed after 2 attempt(s)" in out, out
    told = _events(orch)
    assert [e["event"] for e in told if e["event"] in ("outcome", "retry", "needs-human")] == [
        "outcome",
        "retry",
        "outcome",
        "needs-human",
    ]
    (retry,) = [e for e in told if e["event"] == "retry"]
    assert (retry["gap_id"], retry["attempt"], retry["kind"]) == ("FIX-1", 2, "feedback")
    assert {"state": "awaiting-pr"}.items() <= next(
        e for e in told if e["event"] == "state"
    ).items()
    assert [e["notification"] for e in told if e["event"] == "notify"] == ["needs-human"]
    (event,) = [e for e in heard.events if e["event"] == "needs-human"]
    assert event["gap_id"] == "FIX-1"
    assert event["message"] == "FIX-1 needs a human: tests-failed after 2 attempt(s)"
    status = ChumpProcess(repo, "status")
    status.finish()
    assert "needs a human (1): `chump retry ID` when it can go on" in status.text
    _, again = _run(repo)  # held: never dispatched
    assert "DISPATCHED" not in again
    monkeypatch.setenv("AGENT_MODE", "learn")
    released = ChumpProcess(repo, "retry", "FIX-1")
    assert released.finish() == 0, released.text
    assert "FIX-1: released; attempt 3 starts with the next dispatch" in released.text
    refused = ChumpProcess(repo, "retry", "FIX-1")
    assert refused.finish() == 2
    assert "FIX-1: not waiting for a human" in refused.text
    _, last = _run(repo)
    assert "OUTCOME: FIX-1 shipped" in last, last
    third = (prompts / "FIX-1.3.txt").read_text()
    assert "this is attempt 3" in third
    assert "tests/test_FIX-1.py::test_FIX-1" in third  # what failed before the hold
    with Store.for_repo(repo) as store:
        assert [r.attempt for r in store.dispatches()] == [1, 2, 3]
        assert store.holds() == {}


def test_a_rate_limit_backs_off_and_does_not_count_against_the_arm(
    tmp_path: Path, prompts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_MODE", "ratelimit-once")
    repo = _project(tmp_path, ONE_GAP)
    _, out = _run(repo)
    assert "RETRY: FIX-1 attempt 2 in 0.05s (rate-limited)" in out, out
    assert "OUTCOME: FIX-1 shipped" in out, out
    with Store.for_repo(repo) as store:
        rows = store.dispatches()
        routed = store.conn.execute("SELECT outcome FROM routing_outcomes").fetchall()
    assert [(r.outcome, r.cause) for r in rows] == [("killed", "rate-limited"), ("shipped", "")]
    assert rows[1].started_at - (rows[0].ended_at or 0) >= 0.05  # it waited its backoff
    assert routed == [("shipped",)]  # the rate limit says nothing about the arm


FAKE_CLAUDE = """\
#!{python}
import sys
sys.stdin.read()
sys.stdout.write(open({fixture!r}, encoding="utf-8").read())
sys.exit(1)
"""


@pytest.mark.parametrize(("gaps", "parallel"), [(4, 1), (1, 1), (3, 3)])
def test_a_backend_that_is_not_logged_in_opens_its_circuit_and_the_run_exits_3(
    tmp_path: Path, gaps: int, parallel: int
) -> None:
    """The real claude CLI's stream when not logged in (recorded in fixtures/)."""
    fixture = FIXTURES / "agents/claude-not-logged-in.stdout.jsonl"
    binary = tmp_path / "claude"
    binary.write_text(FAKE_CLAUDE.format(python=PY, fixture=str(fixture)))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    backlog = "gaps:\n" + "".join(
        f"  - {{id: AUTH-{n}, title: t, priority: P1, effort: s}}\n" for n in range(gaps)
    )
    repo = _project(tmp_path, backlog)
    text = (repo / "pyproject.toml").read_text().replace('spawner = "script"', 'spawner = "claude"')
    (repo / "pyproject.toml").write_text(
        text + f'\n[tool.chump.spawners.claude]\nbinary = "{binary}"\n'
    )
    events = tmp_path / "events.jsonl"
    execute = ("dispatch", "--no-dry-run", "--watch", "--max-parallel", str(parallel))
    chump = ChumpProcess(repo, *execute, "--events", str(events))
    assert chump.finish() == 3, chump.text
    told = [json.loads(line) for line in events.read_text().splitlines()]
    circuits = [e for e in told if e["event"] == "circuit"]
    assert [(e["arm"], e["message"]) for e in circuits] == [
        ("claude", "Not logged in · Please run /login")
    ]
    assert chump.text.count("CIRCUIT: claude open: Not logged in · Please run /login") == 1
    assert chump.text.splitlines()[-1] == "claude: Not logged in · Please run /login"
    with Store.for_repo(repo) as store:
        rows = store.dispatches()
        routed = store.conn.execute("SELECT COUNT(*) FROM routing_outcomes").fetchone()[0]
        assert store.circuits() == {}  # closed when the run ended: the next run tries again
    # the ones already started when the circuit opened end as it did; no other is started
    started = sorted((r.gap_id, r.cause) for r in rows)  # (started together: any order)
    assert started == [(f"AUTH-{n}", "auth") for n in range(parallel)]
    assert routed == 0
    assert os.path.exists(repo / ".chump")


@pytest.mark.slow
@pytest.mark.parametrize(
    "crash", ["finish.recorded", "dispatch.recorded:2", "dispatch.agent-running:2"]
)
def test_a_crash_around_a_retry_neither_loses_nor_repeats_it(
    tmp_path: Path, prompts: Path, crash: str
) -> None:
    repo = _project(tmp_path, ONE_GAP)
    execute = ("dispatch", "--no-dry-run", "--watch")
    first = ChumpProcess(repo, *execute, env={CRASH_ENV: crash})
    assert first.finish() == -signal.SIGKILL, first.text
    for _ in range(3):
        ChumpProcess(repo, *execute).finish()
        with Store.for_repo(repo) as store:
            if "FIX-1" in store.shipped_ids():
                break
    with Store.for_repo(repo) as store:
        rows = store.dispatches()
        assert store.retries() == {}
    verdicts = [(r.attempt, r.outcome) for r in rows if r.outcome in ("ci_failed", "shipped")]
    assert verdicts == [(1, "ci_failed"), (2, "shipped")], rows
    shipped = max(prompts.glob("FIX-1.*.txt"), key=lambda p: int(p.name.split(".")[1]))
    assert "tests/test_FIX-1.py::test_FIX-1" in shipped.read_text()  # the feedback survived


def test_a_retry_whose_start_fails_ends_the_run_and_is_owed_again(
    tmp_path: Path, prompts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A before_run that fails from its second call on: the retry is tried once in the run
    (no loop starting it for ever) and stays owed, with its feedback, for the next run."""
    monkeypatch.setenv("AGENT_MODE", "never")
    count = tmp_path / "calls"
    step = (
        f"import pathlib, sys; p = pathlib.Path({str(count)!r}); "
        "n = len(p.read_text()) if p.exists() else 0; p.write_text('x' * (n + 1)); "
        "sys.exit(1 if n else 0)"
    )
    repo = _project(tmp_path, ONE_GAP)
    text = (repo / "pyproject.toml").read_text()
    table = f'[tool.chump.worktree]\nbefore_run = ["{PY}", "-c", {json.dumps(step)}]\n'
    (repo / "pyproject.toml").write_text(
        text.replace("[tool.chump.spawners.script]", table + "\n[tool.chump.spawners.script]")
    )
    _, out = _run(repo)
    with Store.for_repo(repo) as store:
        rows = store.dispatches()
        owed = store.retries()
    assert [(r.attempt, r.outcome, r.cause) for r in rows] == [
        (1, "ci_failed", "tests-failed"),
        (2, "killed", "setup-failed"),
    ], out
    assert "CIRCUIT" not in out  # a failing set-up is not a broken backend
    assert owed["FIX-1"].attempt == 2
    assert "tests/test_FIX-1.py::test_FIX-1" in owed["FIX-1"].feedback
