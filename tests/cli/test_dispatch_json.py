"""``chump dispatch --json``: exactly one JSON object on stdout, valid against the shipped
schema — the dry run's plan, a real run's summary (its progress on stderr), and the line of an
``--exclusive`` run that leaves the backlog to the orchestrator already there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest

from pytest_chump import cli
from pytest_chump.cli.dispatch_json import exited
from pytest_chump.core.schemas import schema
from pytest_chump.state.orchestrator_lock import PID_NAME, exclusive
from pytest_chump.state.store import Store
from tests.gitrepos import repo  # noqa: F401  (fixture)

BACKLOG = """\
gaps:
  - {id: J-1, title: "the \\x1b[31mfirst\\x1b[0m", priority: P1, effort: s}
  - {id: J-2, title: second, priority: P2, effort: m}
  - {id: J-3, title: needs the first, priority: P1, effort: s, depends_on: [J-1]}
  - {id: J-4, title: bad, priority: P9}
"""
GONE = 999999  # a pid no process has


def valid(doc: dict[str, Any]) -> dict[str, Any]:
    jsonschema.Draft202012Validator(schema("dispatch")).validate(doc)
    return doc


def dry_run(capsys: pytest.CaptureFixture[str], repo: Path) -> dict[str, Any]:
    capsys.readouterr()
    assert cli.main(["dispatch", "--repo-root", str(repo), "--json"]) == 0
    out = capsys.readouterr().out
    (line,) = out.splitlines()
    return valid(json.loads(line))


def chump(repo: Path, *args: str) -> tuple[int, str, str]:
    """``chump <args>`` in ``repo`` as a process: (exit status, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_chump.cli", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_dry_run_of_an_empty_backlog(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/gaps.yaml").write_text("gaps: []\n")
    assert dry_run(capsys, tmp_path) == {
        "mode": "dry-run",
        "total": 0,
        "open": 0,
        "done": 0,
        "max_parallel": 2,
        "in_flight": 0,
        "slots": 2,
        "ready": 0,
        "picks": [],
        "nothing_to_do": "nothing to dispatch: no open gap without problems in the backlog",
    }
    assert not (tmp_path / ".chump").exists()


def test_dry_run_counts_agents_in_flight(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/gaps.yaml").write_text(BACKLOG)
    with Store.for_repo(tmp_path) as store:  # another orchestrator's agent: this process
        row = store.add_dispatch("J-2", "chump/j-2", str(tmp_path), "claude", "elsewhere:1:1")
        store.update_dispatch(row, pid=os.getpid(), state="running")
    plan = dry_run(capsys, tmp_path)
    facts = ("total", "open", "in_flight", "slots", "ready", "nothing_to_do")
    assert {k: plan[k] for k in facts} == {
        "total": 4,
        "open": 4,
        "in_flight": 1,
        "slots": 1,
        "ready": 1,
        "nothing_to_do": None,
    }
    (pick,) = plan["picks"]
    assert pick == {
        "gap_id": "J-1",
        "priority": "P1",
        "effort": "s",
        "worktree": str(tmp_path / ".chump/worktrees/j-1"),
        "title": "the \x1b[31mfirst\x1b[0m",  # JSON escapes it: no terminal sees the escape
    }


def test_a_watched_run_prints_its_summary_as_json_and_its_progress_on_stderr(repo: Path) -> None:
    (repo / "docs/gaps.yaml").write_text(BACKLOG.split("  - {id: J-2")[0])
    status, out, err = chump(repo, "dispatch", "--no-dry-run", "--watch", "--json")
    assert status == 0, err
    (line,) = out.splitlines()
    summary = valid(json.loads(line))
    assert "DISPATCHED: J-1" in err
    assert "=== monitor summary (1 entries) ===" in err
    assert (summary["mode"], summary["exit_status"], summary["exit_reason"]) == (
        "execute+watch",
        0,
        None,
    )
    (started,) = summary["dispatched"]
    assert (started["gap_id"], started["branch"], started["backend"]) == (
        "J-1",
        "chump/j-1",
        "script",
    )
    assert summary["entries"] == [
        {
            "gap_id": "J-1",
            "branch": "chump/j-1",
            "dispatch_id": started["dispatch_id"],
            "outcome": "shipped",
            "pr_number": None,
            "reason": summary["entries"][0]["reason"],
            "cause": None,
        }
    ]
    assert summary["totals"] == {
        "shipped": 1,
        "ci_failed": 0,
        "stalled": 0,
        "killed": 0,
        "race_abandoned": 0,
        "spawn_failures": 0,
    }
    # how a run that did not end well says why, in the same shape
    run = {k: v for k, v in summary.items() if not k.startswith("exit_")}
    orch = SimpleNamespace(finisher=SimpleNamespace(counts={"spawn_failures": 2}))
    reasons = [
        exited(run, status, orch, broken)["exit_reason"]  # type: ignore[arg-type]
        for status, broken in ((130, []), (3, ["claude: Not logged in"]), (1, []))
    ]
    assert reasons == [
        "interrupted by SIGINT",
        "a backend is broken: claude: Not logged in",
        "2 dispatches failed to start",
    ]
    for status, reason in zip((130, 3, 1), reasons, strict=True):
        valid({**run, "exit_status": status, "exit_reason": reason})


def test_an_exclusive_run_leaves_the_backlog_to_the_orchestrator_there(repo: Path) -> None:
    state = repo / ".chump"
    with exclusive(state) as mine:
        assert mine
        (state / PID_NAME).write_text(f"{GONE}\n")  # nobody to nudge: never this process
        status, out, err = chump(repo, "dispatch", "--no-dry-run", "--exclusive", "--json")
    assert status == 0, err
    said = "chump: another orchestrator holds the lock; it will pick up the backlog"
    assert err.strip() == said
    assert valid(json.loads(out)) == {
        "mode": "execute",
        "orchestrator_pid": GONE,
        "exit_status": 0,
        "exit_reason": said,
    }
