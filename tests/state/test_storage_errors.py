"""Storage failures are one line and exit 2, never a traceback; a corrupt or empty database is
moved aside, never silently replaced; agents stay adoptable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pytest_chump.cli import main
from pytest_chump.state.database import StorageError
from pytest_chump.state.store import Store


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    status = main(list(argv))
    return status, capsys.readouterr().err.splitlines()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/gaps.yaml").write_text("gaps:\n  - {id: A-1, priority: P1}\n")
    return tmp_path


def test_an_empty_database_is_moved_aside_and_said(root: Path) -> None:
    db = root / ".chump" / "chump.db"
    db.parent.mkdir()
    db.write_bytes(b"")
    with pytest.raises(StorageError, match=r"chump.db: the state database is empty \(0 bytes"):
        Store(db)
    (aside,) = (root / ".chump").glob("chump.db.empty-*")
    assert aside.stat().st_size == 0
    assert not db.exists()
    Store(db).close()  # the next run starts a new one


def test_a_corrupt_database_is_moved_aside_and_said(root: Path) -> None:
    db = root / ".chump" / "chump.db"
    db.parent.mkdir()
    db.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(StorageError, match="the state database is corrupt"):
        Store(db)
    (aside,) = (root / ".chump").glob("chump.db.corrupt-*")
    assert aside.read_bytes().startswith(b"this is not a database")


def test_a_full_database_is_one_line_not_a_traceback(root: Path) -> None:
    with Store.for_repo(root) as store:
        store.conn.execute("PRAGMA max_page_count=1")  # SQLite itself says: full
        with pytest.raises(StorageError, match=r"cannot write the state database: .*full"):
            store.add_dispatch("A-1", "chump/a-1", str(root), "x", "me", meta={"x": "y" * 10_000})
        assert store.dispatches() == []  # rolled back: nothing half-written


def test_reporting_commands_on_a_corrupt_database_are_one_line(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = root / ".chump" / "chump.db"
    db.parent.mkdir()
    db.write_bytes(b"garbage" * 1000)
    for command in ("routes", "lessons", "reflections", "status"):
        status, err = run(capsys, command, "--repo-root", str(root))
        assert status == 2, command
        assert len(err) == 1, (command, err)
        assert "Traceback" not in err[0]


def test_chump_dir_being_a_file_is_one_line(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / ".chump").write_text("oops\n")
    status, err = run(capsys, "status", "--repo-root", str(root))
    assert status in (0, 2)
    status, err = run(capsys, "dispatch", "--repo-root", str(root), "--no-dry-run")
    assert status == 2
    assert len(err) <= 2
    assert not any("Traceback" in line for line in err)


def test_a_non_utf8_pyproject_is_one_line(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "pyproject.toml").write_bytes(b"[tool.chump]\nbacklog = '\xff'\n")
    status, err = run(capsys, "validate", "--repo-root", str(root))
    assert status == 2
    assert len(err) == 1
    assert "pyproject.toml: cannot read" in err[0]


def test_sqlite_errors_anywhere_are_caught_at_the_top(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Store, "unfinished", broken)
    Store.for_repo(root).close()
    status, err = run(capsys, "status", "--repo-root", str(root))
    assert (status, err) == (2, ["chump: error: state database: disk I/O error"])
