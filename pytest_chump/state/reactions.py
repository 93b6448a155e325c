"""The store's memory of reactions to failures: scheduled retries, gaps held for a human,
open circuits. In the database, so a restarted orchestrator neither loses nor repeats an
attempt, and every orchestrator of the repository sees the same holds and circuits.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from pytest_chump.state.database import Database
from pytest_chump.state.liveness import owner_alive
from pytest_chump.state.rows import CircuitRow, HoldRow, RetryRow

_RETRY_COLUMNS = ", ".join(f.name for f in dataclasses.fields(RetryRow))
_HOLD_COLUMNS = ", ".join(f.name for f in dataclasses.fields(HoldRow))


@dataclass(frozen=True, slots=True)
class Followup:
    """What a finished dispatch leaves for later, written with its outcome in one
    transaction (``Store.finish_with_reflection``): a crash never keeps one without the other."""

    retry: RetryRow | None = None
    hold: HoldRow | None = None  # the gap needs a human
    circuit: tuple[str, str] | None = None  # (arm, the backend's own words)


def _schedule(conn: sqlite3.Connection, retry: RetryRow) -> None:
    marks = ",".join("?" * len(dataclasses.fields(RetryRow)))
    conn.execute(
        f"INSERT OR REPLACE INTO retries({_RETRY_COLUMNS}) VALUES ({marks})",  # noqa: S608
        dataclasses.astuple(retry),
    )


def _hold(conn: sqlite3.Connection, hold: HoldRow) -> None:
    conn.execute("DELETE FROM retries WHERE gap_id=?", (hold.gap_id,))
    marks = ",".join("?" * len(dataclasses.fields(HoldRow)))
    conn.execute(
        f"INSERT OR REPLACE INTO holds({_HOLD_COLUMNS}) VALUES ({marks})",  # noqa: S608
        dataclasses.astuple(hold),
    )


def _open(conn: sqlite3.Connection, arm: str, message: str, owner: str, now: float) -> bool:
    cur = conn.execute(
        "INSERT OR IGNORE INTO circuits(arm, owner, message, opened_at) VALUES (?,?,?,?)",
        (arm, owner, message, now),
    )
    return cur.rowcount == 1


class Reactions(Database):
    """Retries, holds and circuits (a part of :class:`~pytest_chump.state.store.Store`)."""

    def write_followup(
        self, conn: sqlite3.Connection, gap_id: str, dispatch_id: int, followup: Followup
    ) -> None:
        """Write ``followup`` of dispatch ``dispatch_id`` inside the caller's transaction."""
        if followup.retry is not None:
            _schedule(conn, followup.retry)
        if followup.hold is not None:
            _hold(conn, followup.hold)
        if followup.circuit is not None:
            row = conn.execute("SELECT owner FROM dispatches WHERE id=?", (dispatch_id,))
            owner = (row.fetchone() or ("",))[0]
            _open(conn, *followup.circuit, owner, self.clock())

    # --- retries ----------------------------------------------------------------------

    def schedule_retry(self, retry: RetryRow) -> None:
        """The gap's next attempt (replacing any scheduled one); a new dispatch of the gap
        consumes it (``Store.add_dispatch``)."""
        with self.transaction() as conn:
            _schedule(conn, retry)

    def retries(self) -> dict[str, RetryRow]:
        """Scheduled attempts by gap id."""
        rows = self.conn.execute(
            f"SELECT {_RETRY_COLUMNS} FROM retries ORDER BY not_before"  # noqa: S608
        ).fetchall()
        return {row[0]: RetryRow(*row) for row in rows}

    # --- holds --------------------------------------------------------------------------

    def hold(self, hold: HoldRow) -> None:
        """Hold a gap for a human: no dispatch of it until :meth:`release_hold`."""
        with self.transaction() as conn:
            _hold(conn, hold)

    def holds(self) -> dict[str, HoldRow]:
        rows = self.conn.execute(
            f"SELECT {_HOLD_COLUMNS} FROM holds ORDER BY since"  # noqa: S608
        ).fetchall()
        return {row[0]: HoldRow(*row) for row in rows}

    def release_hold(self, gap_id: str) -> HoldRow | None:
        """Let ``gap_id`` be dispatched again; the hold it had, if any."""
        with self.transaction() as conn:
            row = conn.execute(
                f"SELECT {_HOLD_COLUMNS} FROM holds WHERE gap_id=?",  # noqa: S608
                (gap_id,),
            ).fetchone()
            conn.execute("DELETE FROM holds WHERE gap_id=?", (gap_id,))
        return HoldRow(*row) if row else None

    def retry_held(self, gap_id: str, make: Callable[[HoldRow], RetryRow]) -> RetryRow | None:
        """Release the hold of ``gap_id`` and schedule the retry ``make`` builds from it, in
        one transaction (a crash between the two would lose what failed); None when the gap
        was not held."""
        with self.transaction() as conn:
            row = conn.execute(
                f"SELECT {_HOLD_COLUMNS} FROM holds WHERE gap_id=?",  # noqa: S608
                (gap_id,),
            ).fetchone()
            if row is None:
                return None
            retry = make(HoldRow(*row))
            conn.execute("DELETE FROM holds WHERE gap_id=?", (gap_id,))
            _schedule(conn, retry)
        return retry

    # --- circuits -----------------------------------------------------------------------

    def open_circuit(self, arm: str, owner: str, message: str) -> bool:
        """Open ``arm``'s circuit (its first message is kept); False when it was open."""
        with self.transaction() as conn:
            return _open(conn, arm, message, owner, self.clock())

    def circuits(self) -> dict[str, CircuitRow]:
        """Open circuits by arm label: this run's, and those of runs that did not end
        (killed: the run resumed is the same run)."""
        rows = self.conn.execute(
            "SELECT arm, owner, message, opened_at FROM circuits ORDER BY opened_at"
        ).fetchall()
        return {row[0]: CircuitRow(*row) for row in rows}

    def close_circuits(self, owner: str) -> None:
        """The run of ``owner`` ended: its circuits close, and those it inherited from runs
        that were killed (owners no longer running)."""
        with self.transaction() as conn:
            rows = conn.execute("SELECT arm, owner FROM circuits").fetchall()
            done = [(arm,) for arm, by in rows if by == owner or not owner_alive(by)]
            conn.executemany("DELETE FROM circuits WHERE arm=?", done)
