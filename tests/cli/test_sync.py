"""``chump sync``: shipped outcomes from the store written into the backlog, file or directory;
afterwards a fresh clone (no ``.chump/``) never dispatches a shipped gap again."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from pytest_chump.cli import main
from pytest_chump.state.store import Store

BACKLOG = """\
# hand-kept
gaps:
  - id: S-1  # shipped
    priority: P1
    status: open
  - {id: S-2, priority: P1}
  - id: S-3
    priority: P1
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.splitlines()


def shipped(root: Path, gap_id: str, pr: int | None, when: float) -> None:
    with Store.for_repo(root) as store:
        row = store.add_dispatch(gap_id, f"chump/{gap_id.lower()}", str(root), "x", "o:1:1")
        store.finish_dispatch(row, "shipped", pr_number=pr)
        store.update_dispatch(row, ended_at=when)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/gaps.yaml").write_text(BACKLOG)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_shipped_gaps_are_marked_done_in_place(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = time.mktime((2026, 11, 20, 12, 0, 0, 0, 0, -1))
    shipped(root, "S-1", 41, day)
    shipped(root, "S-2", None, day)
    status, out, err = run(capsys, "sync", "--dry-run")
    assert (status, err) == (0, [])
    assert out == [
        "would mark S-1 done (PR #41) in docs/gaps.yaml",
        "would mark S-2 done in docs/gaps.yaml",
    ]
    assert (root / "docs/gaps.yaml").read_text() == BACKLOG
    status, out, _ = run(capsys, "sync")
    assert status == 0
    assert out[0] == "marked S-1 done (PR #41) in docs/gaps.yaml"
    text = (root / "docs/gaps.yaml").read_text()
    assert text.startswith("# hand-kept\ngaps:\n  - id: S-1  # shipped\n    priority: P1\n")
    assert "    status: done\n    closed_date: 2026-11-20\n    closed_pr: 41\n" in text
    assert "  - {id: S-2, priority: P1, status: done, closed_date: 2026-11-20}\n" in text
    status, out, _ = run(capsys, "sync")
    assert out == ["nothing to sync: every shipped gap is done in the backlog"]
    shutil.rmtree(root / ".chump")  # a fresh clone: the backlog alone says what shipped
    status, out, _ = run(capsys, "ready")
    assert [line.split()[0] for line in out] == ["S-3"]


def test_a_backlog_directory_is_edited_file_by_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gaps = tmp_path / "docs/gaps"
    gaps.mkdir(parents=True)
    (gaps / "D-1.yaml").write_text("- id: D-1\n  priority: P1\n")
    (gaps / "D-2.yaml").write_text("- id: D-2\n  priority: P1\n")
    monkeypatch.chdir(tmp_path)
    shipped(tmp_path, "D-2", 7, time.time())
    status, out, _ = run(capsys, "sync", "--backlog", "docs/gaps")
    assert status == 0
    assert out == ["marked D-2 done (PR #7) in docs/gaps/D-2.yaml"]
    assert (gaps / "D-1.yaml").read_text() == "- id: D-1\n  priority: P1\n"
    assert (gaps / "D-2.yaml").read_text().startswith("- id: D-2\n  priority: P1\n  status: done\n")


def test_an_entry_it_cannot_edit_is_reported_and_left_alone(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = "gaps:\n  - id: S-1\n    status:\n      open\n"
    (root / "docs/gaps.yaml").write_text(odd)
    shipped(root, "S-1", 1, time.time())
    status, out, err = run(capsys, "sync")
    assert (status, out) == (1, [])
    assert err[0].startswith("could not mark S-1 done in docs/gaps.yaml: its entry has a layout")
    assert (root / "docs/gaps.yaml").read_text() == odd


def test_nothing_shipped_yet_and_other_sources(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "sync")[1] == ["nothing to sync: no dispatch has shipped yet"]
    status, _, err = run(capsys, "sync", "--backlog-source", "github")
    assert status == 2
    assert "chump sync edits YAML backlogs" in err[0]


def test_a_hostile_file_name_is_opened_by_its_real_path_and_shown_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gaps = tmp_path / "docs/gaps"
    gaps.mkdir(parents=True)
    hostile = gaps / "H-1\x1b[1m.yaml"
    hostile.write_text("- id: H-1\n  priority: P1\n")
    monkeypatch.chdir(tmp_path)
    shipped(tmp_path, "H-1", 2, time.time())
    status, out, err = run(capsys, "sync", "--backlog", "docs/gaps")
    assert (status, err) == (0, [])
    assert out == ["marked H-1 done (PR #2) in docs/gaps/H-1\\x1b[1m.yaml"]
    assert "status: done" in hostile.read_text()
