"""What watchers read besides dispatches: the event stream and each orchestrator's timings.

Orchestrators append events (``dispatched``, ``outcome``, ...) to one bounded table, so a
``chump serve`` in another process can stream them (its ``seq`` is the SSE event id) and
a client that reconnects resumes where it left off. Each orchestrator also keeps its latency
histograms in one row of its own, rewritten every few seconds, for ``/metrics``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_chump.state.database import Database

EVENTS_KEPT = 20_000
"""The newest events kept; older ones are pruned as new ones arrive."""
_PRUNE_EVERY = 500
TIMINGS_KEPT_S = 7 * 86400.0
"""Timings of orchestrators not heard from for this long are forgotten."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    body: dict[str, object]


class Telemetry(Database):
    """Events and timings (a part of :class:`~pytest_chump.state.store.Store`)."""

    def add_event(self, owner: str, event: Mapping[str, object]) -> int:
        """Append ``event`` (its ``event`` key is the name); returns its sequence number."""
        body = json.dumps(event, sort_keys=True, default=str)
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO events(at, owner, name, body) VALUES (?,?,?,?)",
                (self.clock(), owner, str(event.get("event", "")), body),
            )
            seq = int(cur.lastrowid or 0)
            if seq % _PRUNE_EVERY == 0:
                conn.execute("DELETE FROM events WHERE seq <= ?", (seq - EVENTS_KEPT,))
        return seq

    def save_timings(self, owner: str, timings: Mapping[str, object]) -> None:
        """Replace ``owner``'s timings; forget those of owners long gone."""
        now = self.clock()
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO timings(owner, updated_at, body) VALUES (?,?,?)",
                (owner, now, json.dumps(timings, sort_keys=True)),
            )
            conn.execute("DELETE FROM timings WHERE updated_at < ?", (now - TIMINGS_KEPT_S,))


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
    """``sql``'s rows; none from a store made before these tables existed."""
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def events_after(conn: sqlite3.Connection, seq: int, limit: int = 500) -> list[StoredEvent]:
    """Events newer than ``seq``, oldest first (none when the table does not exist yet)."""
    sql = "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
    return [StoredEvent(s, _object(body)) for s, body in _rows(conn, sql, (seq, limit))]


def last_seq(conn: sqlite3.Connection) -> int:
    """The newest event's sequence number (0: none)."""
    return int(next(iter(_rows(conn, "SELECT MAX(seq) FROM events")), (0,))[0] or 0)


def first_seq(conn: sqlite3.Connection) -> int:
    """The oldest kept event's sequence number (0: none)."""
    return int(next(iter(_rows(conn, "SELECT MIN(seq) FROM events")), (0,))[0] or 0)


def timings(conn: sqlite3.Connection) -> list[dict[str, object]]:
    """Every orchestrator's saved timings."""
    return [_object(body) for (body,) in _rows(conn, "SELECT body FROM timings ORDER BY owner")]


def _object(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
