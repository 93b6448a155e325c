"""The SQLite database under ``.chump/``: opening it (WAL, retried while another process
creates it), migrating its schema, one-writer transactions, and read-only connections.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Self

from pytest_chump.core.errors import ChumpError
from pytest_chump.state.locks import file_lock
from pytest_chump.state.schema import MIGRATIONS, SCHEMA

DB_NAME = "chump.db"
OPEN_RETRY_SECONDS = 10.0
BUSY_TIMEOUT_MS = 5000


class StorageError(ChumpError):
    """The state database cannot be used (full disk, corrupt, newer schema): one line, exit 2.

    Agents keep running and their dispatches stay in the store, so a later run adopts them.
    """


def move_aside(path: Path, why: str) -> Path:
    """Rename a database chump cannot use (and its WAL files) out of the way; never delete it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{why}-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            source.rename(target.with_name(target.name + suffix))
    return target


class Database:
    """A read-write connection to one state database, migrated to the current schema."""

    clock: Callable[[], float] = time.time
    """Where the time written into rows comes from (a simulation gives its virtual clock)."""

    def __init__(self, path: Path, shared: bool = False) -> None:
        """``shared``: the connection may be closed by another thread than the one that
        opened it (a worker's, closed when its pool shuts down); it is still used by one
        thread at a time."""
        self.path = path
        self.shared = shared
        path.parent.mkdir(parents=True, exist_ok=True)
        if path == Path(":memory:"):
            self._open_retrying()
            return
        # openers take turns: a database being created is 0 bytes for a moment, and only
        # one that is 0 bytes while nobody creates it was truncated
        with file_lock(path.with_name(path.name + ".open-lock")):
            self._refuse_empty()
            self._open_retrying()

    def _open_retrying(self) -> None:
        path = self.path
        deadline = time.monotonic() + OPEN_RETRY_SECONDS
        while True:
            try:
                self._open()
                return
            except sqlite3.OperationalError as exc:
                # creating the database, switching it to WAL and migrating need it to
                # themselves for a moment, and SQLite may answer "locked" at once instead
                # of waiting: processes opening a new database together retry briefly
                if hasattr(self, "conn"):
                    self.conn.close()
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise StorageError(f"{path}: cannot open the state database: {exc}") from None
                time.sleep(0.01)
            except sqlite3.DatabaseError as exc:  # not a database, or malformed
                if hasattr(self, "conn"):
                    self.conn.close()
                aside = move_aside(path, "corrupt")
                raise StorageError(
                    f"{path}: the state database is corrupt ({exc}); moved aside to "
                    f"{aside.name}, a new one starts with the next run"
                ) from None

    @classmethod
    def over(cls, conn: sqlite3.Connection, path: Path) -> Self:
        """This class's read methods over ``conn`` (from :func:`read_only`): no opening, no
        migration; a write through it fails ("attempt to write a readonly database")."""
        view = cls.__new__(cls)
        view.path, view.conn = path, conn
        return view

    def _refuse_empty(self) -> None:
        """A 0-byte database is a truncated one (a full disk, a crash): never silently
        replaced — moved aside, and said."""
        path = self.path
        if path.is_file() and path.stat().st_size == 0:
            aside = move_aside(path, "empty")
            raise StorageError(
                f"{path}: the state database is empty (0 bytes: truncated?); moved aside to "
                f"{aside.name}, a new one starts with the next run"
            )

    def _open(self) -> None:
        self.conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=not self.shared
        )
        if self.path != Path(":memory:"):  # (a database in memory has no journal file)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``: one writer at a time, rolled back on error; a
        storage failure (full disk, locked past the timeout) is a one-line ``StorageError``."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            with suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise StorageError(f"{self.path}: cannot write the state database: {exc}") from None

    def _migrate(self) -> None:
        """Bring the schema to this version's; a store already there is only read (opening
        it never waits for another process's write)."""
        if self.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
            return
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise ChumpError(
                    f"{self.path}: schema version {version} is newer than this chump knows "
                    f"({len(MIGRATIONS)}); upgrade pytest-chump"
                )
            if version == len(MIGRATIONS):
                return
            # a new database gets the current schema at once; an older one is migrated
            scripts = [SCHEMA] if version == 0 else list(MIGRATIONS[version:])
            for script in scripts:
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={len(MIGRATIONS)}")


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the database at ``path`` (which must exist): looking at
    history never creates, migrates or changes it."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: cannot open the state database: {exc}") from None
    with closing(conn):
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        yield conn
