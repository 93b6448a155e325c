"""The dry run is the plan: ``chump ready [--explain]``, the store consulted by the dry run,
agents already running counted against max-parallel, whoever started them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_chump.cli import main
from pytest_chump.state.liveness import make_owner
from pytest_chump.state.store import Store
from tests.chumpproc import ChumpProcess
from tests.gitrepos import git, make_origin

BACKLOG = """\
gaps:
  - {id: CALC-001, title: add, priority: P1, effort: s}
  - {id: CALC-002, title: sub, priority: P1, effort: s}
  - {id: CALC-003, title: mul, priority: P1, effort: s}
  - {id: CALC-004, title: div, priority: P1, effort: s, depends_on: [CALC-003]}
  - {id: CALC-005, title: later, priority: P3}
  - {id: CALC-006, title: huge, priority: P1, effort: xl}
  - {id: CALC-007, title: bad, priority: P1, effort: s, depends_on: [NOPE]}
  - {id: CALC-008, title: done, status: done}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.splitlines()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _, clone = make_origin(tmp_path)
    (clone / "docs/gaps.yaml").write_text(BACKLOG)
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "backlog")
    git(clone, "push", "-q", "origin", "main")
    monkeypatch.chdir(clone)
    return clone


def record(repo: Path, gap_id: str, outcome: str | None, owner: str = "", pid: int = 0) -> None:
    """A dispatch in the store, as an orchestrator would have left it."""
    with Store.for_repo(repo) as store:
        row = store.add_dispatch(
            gap_id, f"chump/{gap_id.lower()}", str(repo), "claude", owner or "elsewhere:1:1"
        )
        if pid:
            store.update_dispatch(row, pid=pid, state="running")
        if outcome is not None:
            store.finish_dispatch(row, outcome, pr_number=7)


def test_ready_lists_the_round_in_order(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    status, out, _ = run(capsys, "ready")
    assert status == 0
    # critical path first: CALC-003 unblocks CALC-004
    assert [line.split()[0] for line in out] == ["CALC-003", "CALC-001", "CALC-002"]
    assert out[0] == "CALC-003  ready (prio=P1 effort=s)  -- mul"


def test_explain_says_why_each_open_gap_is_not_ready(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    record(repo, "CALC-003", "ci_failed")
    record(repo, "CALC-001", "shipped")
    _, out, _ = run(capsys, "ready", "--explain")
    reasons = dict(line.split("  ", 1) for line in out)
    assert reasons == {
        "CALC-001": "not ready: shipped",
        "CALC-002": "ready (prio=P1 effort=s)  -- sub",
        "CALC-003": "ready (prio=P1 effort=s)  -- mul",  # failed once: may be tried again
        "CALC-004": "not ready: blocked by CALC-003: ci_failed (PR #7)",
        "CALC-005": "not ready: priority P3 (only P0-P2 are dispatched)",
        "CALC-006": "not ready: effort xl (break it down first)",
        "CALC-007": "not ready: quarantined: gaps[6].depends_on[0]: unknown id 'NOPE'",
    }
    _, out, _ = run(capsys, "ready", "CALC-008", "GHOST")
    assert out == ["CALC-008  not ready: status done", "GHOST  not ready: unknown id"]
    _, out, _ = run(capsys, "ready", "--json")
    first = json.loads(out[0])
    assert first == {"id": "CALC-001", "ready": False, "reason": "shipped", "order": None}


def test_hostile_ids_and_titles_are_escaped(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    (repo / "docs/gaps.yaml").write_text(
        'gaps:\n  - {id: "X\\e]0;owned\\aY", priority: P1}\n'
        '  - {id: T-1, priority: P1, title: "\\e[2Jclear"}\n'
    )
    _, out, _ = run(capsys, "ready", "--explain")
    text = "\n".join(out)
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "X\\x1b]0;owned\\x07Y  not ready: quarantined:" in text
    _, out, _ = run(capsys, "dispatch")
    assert "\x1b" not in "\n".join(out)


def test_dry_run_skips_what_the_store_says_and_counts_running_agents(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    record(repo, "CALC-001", "shipped")
    record(repo, "CALC-002", None, owner=make_owner(), pid=os.getpid())  # in flight, alive
    status, out, _ = run(capsys, "dispatch", "--max-parallel", "3")
    assert status == 0
    assert out[0] == (
        "chump-orchestrator (MVP complete, dry-run): 8 total gaps, 7 open, 1 done; "
        "would dispatch 1 of max-parallel 3"
    )
    assert out[1].startswith("WOULD DISPATCH: CALC-003 ")
    assert len(out) == 2  # one agent runs, one slot is CALC-003's; nothing else is ready
    _, out, _ = run(capsys, "dispatch", "--max-parallel", "1")
    assert out[1] == (
        "nothing to dispatch: 1 agents already running in this repository (max-parallel 1)"
    )


def test_a_one_shot_execute_respects_agents_another_run_started(repo: Path) -> None:
    """3 agents running, capacity 3: a second, one-shot run starts nothing."""
    (repo / "pyproject.toml").write_text(
        "[tool.chump]\nspawner = 'sleeper'\npr_provider = 'git'\nmax_parallel = 3\n"
        "[tool.chump.spawners.sleeper]\ncommand = ['sleep', '600']\nstdin = false\n"
    )
    first = ChumpProcess(repo, "dispatch", "--no-dry-run")
    assert first.finish(timeout=60) == 0, first.text
    with Store.for_repo(repo) as store:
        assert len(store.in_flight()) == 3  # their orchestrator exited; the agents run on
        pids = [row.pid for row in store.in_flight()]
    second = ChumpProcess(repo, "dispatch", "--no-dry-run")
    try:
        assert second.finish(timeout=60) == 0, second.text
        assert "would dispatch 0 of max-parallel 3" in second.text
        assert "nothing to dispatch: 3 agents already running" in second.text
        with Store.for_repo(repo) as store:
            assert len(store.dispatches()) == 3
    finally:
        for pid in pids:
            if pid:
                os.killpg(pid, 9)


def test_unreadable_files_are_counted_in_the_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gaps = tmp_path / "docs/gaps"
    gaps.mkdir(parents=True)
    (gaps / "A-1.yaml").write_text("- id: A-1\n  priority: P1\n")
    (gaps / "broken.yaml").write_text("- id: [unclosed\n")
    (gaps / "noid.yaml").write_text("- title: no id\n")
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, "dispatch", "--backlog", "docs/gaps")
    assert status == 0
    assert err == [
        "chump: 2 entries or files could not be read (never dispatched); "
        "`chump validate` lists the problems"
    ]


def test_a_picker_plugin_choosing_an_unsafe_gap_is_one_line(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_chump.core.errors import PluginError
    from pytest_chump.core.model import Gap
    from pytest_chump.loop.app import App

    class Rogue:
        @staticmethod
        def chump_pick(gaps: object, request: object) -> list[Gap]:
            return [Gap("../../etc")]

    app = App.create({"repo_root": str(repo)}, plugins=[Rogue()])
    with pytest.raises(PluginError, match="chump_pick chose a gap that cannot be dispatched"):
        app.pick(app.load_backlog(), 1)
