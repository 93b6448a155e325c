"""``chump routes`` and ``chump lessons``: tables, --gap, read-only when there is no history."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_chump import cli
from pytest_chump.state.store import Store

BACKLOG = """\
gaps:
  - id: INFRA-1
    title: wire the thing
    priority: P1
    effort: s
  - id: DOCS-1
    title: write the thing
    priority: P2
    effort: m
"""
PYPROJECT = """\
[tool.chump.routing]
rules = [
  { match = { prefix = ["INFRA-"] }, arms = [{ spawner = "codex" }, { spawner = "claude" }] },
]
"""


@pytest.fixture
def repo(
    tmp_path: Path, write_backlog: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> Path:
    write_backlog(BACKLOG)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.splitlines()


def fill(repo: Path) -> None:
    """claude: 2 infra dispatches (1 shipped); codex: 1 docs dispatch, failed on a timeout."""
    rows = [
        ("INFRA-1", "claude", "shipped", ""),
        ("INFRA-1", "claude", "ci_failed", "tests-failed"),
    ]
    rows.append(("DOCS-1", "codex", "killed", "timeout"))
    with Store.for_repo(repo) as store:
        for gap_id, backend, outcome, cause in rows:
            dispatch_id = store.add_dispatch(gap_id, "b", "w", backend, "me", effort="s")
            store.finish_dispatch(dispatch_id, outcome, cause=cause, started_at=0.0, ended_at=300)
            store.conn.execute(
                "INSERT INTO routing_outcomes(dispatch_id, task_class, backend, outcome, "
                "created_at) VALUES (?,?,?,?,0)",
                (dispatch_id, gap_id.split("-")[0].lower(), backend, outcome),
            )


@pytest.mark.parametrize("command", ["routes", "lessons"])
def test_without_history_a_note_and_nothing_created(
    capsys: pytest.CaptureFixture[str], repo: Path, command: str
) -> None:
    status, out, err = run(capsys, command, "--repo-root", str(repo))
    assert (status, err) == (0, [])
    db = repo.resolve() / ".chump" / "chump.db"
    assert out == [f"note: no dispatch history yet ({db} does not exist)"]
    assert not (repo / ".chump").exists()


def test_routes_shows_every_arm(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    fill(repo)
    status, out, _ = run(capsys, "routes", "--repo-root", str(repo))
    assert status == 0
    assert [line.split() for line in out] == [
        ["arm", "successes", "failures", "posterior", "mean"],
        ["claude", "1", "1", "0.50"],
        ["codex", "0", "1", "0.33"],
    ]


def test_routes_for_a_gap_shows_its_candidates_in_order(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    fill(repo)
    status, out, _ = run(capsys, "routes", "--repo-root", str(repo), "--gap", "INFRA-1")
    assert status == 0
    assert [line.split()[:3] for line in out[1:]] == [["codex", "0", "1"], ["claude", "1", "1"]]


def test_routes_for_a_gap_without_history_shows_priors(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    status, out, _ = run(capsys, "routes", "--repo-root", str(repo), "--gap", "DOCS-1")
    assert status == 0
    assert out[0].startswith("note: ")
    assert out[2].split() == ["claude", "0", "0", "0.50"]
    assert not (repo / ".chump").exists()


def test_unknown_gap_is_a_one_line_error(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    status, out, err = run(capsys, "routes", "--repo-root", str(repo), "--gap", "NOPE-1")
    assert (status, out) == (2, [])
    assert err == ["chump: error: --gap NOPE-1: no such gap in " + str(repo / "docs/gaps.yaml")]


def test_lessons_all_and_for_a_gap(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    fill(repo)
    status, out, _ = run(capsys, "lessons", "--repo-root", str(repo))
    assert status == 0
    assert out == [
        "infra/s with claude: 1 of 2 shipped (50%), median 5 min; failures: tests-failed x1",
        "docs/s with codex: 0 of 1 shipped (0%), median 5 min; failures: timeout x1",
    ]
    status, out, _ = run(capsys, "lessons", "--repo-root", str(repo), "--gap", "INFRA-1")
    assert status == 0
    assert out == [
        "*/s with codex: 0 of 1 shipped (0%), median 5 min; failures: timeout x1",
        "infra/s with claude: 1 of 2 shipped (50%), median 5 min; failures: tests-failed x1",
    ]
