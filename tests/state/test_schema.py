"""The schema a new store is given (one script) is the one the migrations build, step by step."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pytest_chump.state.database import DB_NAME
from pytest_chump.state.schema import MIGRATIONS, SCHEMA
from pytest_chump.state.store import Store


def _apply(conn: sqlite3.Connection, scripts: tuple[str, ...] | list[str]) -> None:
    for script in scripts:
        for statement in filter(str.strip, script.split(";")):
            conn.execute(statement)


def shape(conn: sqlite3.Connection) -> dict[str, object]:
    """Every table's columns (name, type, not null, default, key) in order, its indexes with
    their columns and uniqueness, and the version: what two schemas must agree on (the text of
    ``CREATE TABLE`` differs, ``ALTER TABLE`` appends to it)."""
    found: dict[str, object] = {"version": conn.execute("PRAGMA user_version").fetchone()[0]}
    names = conn.execute("SELECT type, name, tbl_name FROM sqlite_master ORDER BY name").fetchall()
    found["objects"] = names
    for kind, name, _ in names:
        if kind == "table":
            found[f"columns {name}"] = conn.execute(f"PRAGMA table_xinfo({name})").fetchall()
            found[f"indexes {name}"] = sorted(
                (idx, unique, origin, partial)
                for _, idx, unique, origin, partial in conn.execute(f"PRAGMA index_list({name})")
            )
        elif kind == "index":
            found[f"index {name}"] = conn.execute(f"PRAGMA index_xinfo({name})").fetchall()
    return found


def replayed(version: int) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    _apply(conn, MIGRATIONS[:version])
    conn.execute(f"PRAGMA user_version={version}")
    return conn


def test_the_one_script_builds_what_the_migrations_build() -> None:
    fresh = sqlite3.connect(":memory:")
    _apply(fresh, [SCHEMA])
    fresh.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
    assert shape(fresh) == shape(replayed(len(MIGRATIONS)))


@pytest.mark.parametrize("version", range(len(MIGRATIONS) + 1))
def test_a_store_of_any_version_opens_at_the_current_schema(tmp_path: Path, version: int) -> None:
    """A new store (version 0) gets the script; an older one is migrated; both end alike."""
    db = tmp_path / ".chump" / DB_NAME
    db.parent.mkdir()
    old = sqlite3.connect(db)
    _apply(old, MIGRATIONS[:version])
    old.execute(f"PRAGMA user_version={version}")
    old.commit()
    old.close()
    with Store.for_repo(tmp_path) as store:
        assert shape(store.conn) == shape(replayed(len(MIGRATIONS)))


def test_a_store_in_memory_has_the_current_schema() -> None:
    with Store(Path(":memory:")) as store:
        assert shape(store.conn) == shape(replayed(len(MIGRATIONS)))
