"""Durable state in ``.chump/chump.db``: dispatches, leases, reflections, routing outcomes.

Leases are taken inside ``BEGIN IMMEDIATE`` so two orchestrators (or a hook and an
orchestrator) racing on one repository can never both dispatch a gap. A lease whose owner
process is gone is stale and may be taken over. Opening and migrating: ``database``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from pytest_chump.core.model import NEUTRAL_CAUSES, outcome_class
from pytest_chump.core.records import Reflection, reflection_to_dict
from pytest_chump.state.database import DB_NAME
from pytest_chump.state.liveness import group_alive, owner_alive
from pytest_chump.state.locks import state_dir
from pytest_chump.state.reactions import Followup, Reactions
from pytest_chump.state.rows import DispatchRow, dispatch_row, encode, reflection_from_json
from pytest_chump.state.telemetry import Telemetry


class LeaseLost(Exception):
    """The caller no longer holds the lease: another orchestrator took the gap over."""


class Store(Reactions, Telemetry):
    """One repository's state: leases, dispatches, their reflections and routing outcomes.

    An owner is live while its process runs and, once it has beaten, while its last beat is
    at most ``lease_ttl`` old: a stopped or hung orchestrator loses its leases and its
    dispatches to a live one.
    """

    lease_ttl: float = 60.0

    @classmethod
    def for_repo(cls, repo_root: Path) -> Store:
        """Open ``<repo_root>/.chump/chump.db``, writing ``.chump/.gitignore`` on first use."""
        return cls(state_dir(repo_root) / DB_NAME)

    # --- owners and leases ----------------------------------------------------------

    def register_owner(self, owner: str) -> float:
        """Record ``owner`` as running; forget owners that are gone. Returns the start of its
        cohort: the earliest start among the owners alive now (this one included), so runs
        started together treat each other's dispatches as part of the same run."""
        host, _, rest = owner.partition(":")
        pid = int(rest.partition(":")[0] or 0)
        with self.transaction() as conn:
            now = self.clock()
            conn.execute(
                "INSERT OR REPLACE INTO owners(owner, host, pid, started_at, beat_at) "
                "VALUES (?,?,?,?,?)",
                (owner, host, pid, now, now),
            )
            rows = conn.execute("SELECT owner, started_at FROM owners").fetchall()
            gone = [(name,) for name, _ in rows if not owner_alive(name)]  # stale ones stay
            conn.executemany("DELETE FROM owners WHERE owner=?", gone)
        return min(started for name, started in rows if (name,) not in gone)

    def mark_nudgeable(self, owner: str) -> None:
        """``owner`` re-reads its backlog on SIGUSR1 (a ``chump dispatch`` process): ``chump
        serve``'s refresh may signal it. An orchestrator without that handler is never
        signalled (SIGUSR1 would end it)."""
        with self.transaction() as conn:
            conn.execute("UPDATE owners SET nudge=1 WHERE owner=?", (owner,))

    def heartbeat(self, owner: str) -> None:
        """``owner`` is alive and watching (see the class docstring)."""
        with self.transaction() as conn:
            conn.execute("UPDATE owners SET beat_at=? WHERE owner=?", (self.clock(), owner))

    def live(self, owner: str) -> bool:
        """Whether ``owner`` runs and, if it ever beat, beat within ``lease_ttl``."""
        if not owner_alive(owner):
            return False
        row = self.conn.execute("SELECT beat_at FROM owners WHERE owner=?", (owner,)).fetchone()
        return row is None or not row[0] or self.clock() - row[0] <= self.lease_ttl

    def acquire_lease(self, gap_id: str, owner: str) -> bool:
        """Take the lease of ``gap_id`` for ``owner``; False when a live owner holds it."""
        return self.claim(gap_id, owner) == "ok"

    def claim(self, gap_id: str, owner: str, capacity: int | None = None) -> str:
        """Take the lease of ``gap_id`` for ``owner`` to start it: ``ok``; ``held`` when a live
        owner holds it; ``full`` when ``capacity`` agents are already at work in the
        repository, whichever orchestrator started them. One transaction, so orchestrators
        racing for the last slot cannot both win it."""
        with self.transaction() as conn:
            row = conn.execute("SELECT owner FROM leases WHERE gap_id=?", (gap_id,)).fetchone()
            if row is not None and row[0] != owner and self.live(row[0]):
                return "held"
            if capacity is not None and len(self._at_work(conn) - {gap_id}) >= capacity:
                return "full"
            conn.execute(
                "INSERT OR REPLACE INTO leases(gap_id, owner, dispatch_id, acquired_at) "
                "VALUES (?,?,NULL,?)",
                (gap_id, owner, self.clock()),
            )
            return "ok"

    def _at_work(self, conn: sqlite3.Connection) -> set[str]:
        """Gaps with an agent at work or starting: live leases not yet ended, and orphaned
        dispatches whose agent still runs. (A lease whose dispatch ended frees its slot at
        once, before its teardown.)"""
        leased = conn.execute(
            "SELECT l.gap_id, l.owner FROM leases l LEFT JOIN dispatches d ON d.id = l.dispatch_id "
            "WHERE l.dispatch_id IS NULL OR d.outcome IS NULL"
        ).fetchall()
        busy = {gap for gap, lease_owner in leased if self.live(lease_owner)}
        for row in self.unfinished():
            if row.gap_id not in busy and group_alive(row.pid, row.pid_start):
                busy.add(row.gap_id)
        return busy

    def link_lease(self, gap_id: str, owner: str, dispatch_id: int) -> None:
        """Tie ``owner``'s lease of ``gap_id`` to its dispatch (adopted ones, after a crash)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE leases SET dispatch_id=? WHERE gap_id=? AND owner=?",
                (dispatch_id, gap_id, owner),
            )

    def holds_lease(self, gap_id: str, owner: str) -> bool:
        """Whether ``owner`` (still) holds the lease of ``gap_id``."""
        return self._holds(self.conn, gap_id, owner)

    @staticmethod
    def _holds(conn: sqlite3.Connection, gap_id: str, owner: str) -> bool:
        row = conn.execute("SELECT owner FROM leases WHERE gap_id=?", (gap_id,)).fetchone()
        return row is not None and row[0] == owner

    def release_lease(self, gap_id: str, owner: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM leases WHERE gap_id=? AND owner=?", (gap_id, owner))

    def live_leases(self) -> dict[str, str]:
        """gap id -> owner, for leases whose owner still runs."""
        rows = self.conn.execute("SELECT gap_id, owner FROM leases").fetchall()
        live = {owner: self.live(owner) for owner in {owner for _, owner in rows}}
        return {gap: owner for gap, owner in rows if live[owner]}

    def prune_stale_leases(self) -> list[str]:
        """Drop leases of owners that are gone; return their gap ids."""
        with self.transaction() as conn:
            rows = conn.execute("SELECT gap_id, owner FROM leases").fetchall()
            stale = [gap for gap, owner in rows if not self.live(owner)]
            conn.executemany("DELETE FROM leases WHERE gap_id=?", [(g,) for g in stale])
        return stale

    # --- dispatches -----------------------------------------------------------------

    def add_dispatch(
        self,
        gap_id: str,
        branch: str,
        worktree: str,
        backend: str,
        owner: str,
        require_lease: bool = False,
        **fields: object,
    ) -> int:
        """Record a dispatch in state ``starting``, link it to the gap's lease, and consume
        the gap's scheduled retry (this dispatch is that attempt).

        ``require_lease``: only while ``owner`` still holds the gap's lease (another
        orchestrator may have taken it over while this one was stopped); ``LeaseLost``
        (nothing written) otherwise."""
        fields = encode(fields)
        columns = ["gap_id", "branch", "worktree", "backend", "owner", "started_at", *fields]
        values = [gap_id, branch, worktree, backend, owner, self.clock(), *fields.values()]
        marks = ",".join("?" * len(columns))
        with self.transaction() as conn:
            if require_lease and not self._holds(conn, gap_id, owner):
                raise LeaseLost(gap_id)
            cur = conn.execute(
                f"INSERT INTO dispatches({','.join(columns)}) VALUES ({marks})",  # noqa: S608
                values,
            )
            dispatch_id = int(cur.lastrowid or 0)
            conn.execute(
                "UPDATE leases SET dispatch_id=? WHERE gap_id=? AND owner=?",
                (dispatch_id, gap_id, owner),
            )
            conn.execute("DELETE FROM retries WHERE gap_id=?", (gap_id,))  # it is this one
        return dispatch_id

    def update_dispatch(self, dispatch_id: int, **fields: object) -> None:
        fields = encode(fields)
        sets = ", ".join(f"{name}=?" for name in fields)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE dispatches SET {sets} WHERE id=?",  # noqa: S608
                [*fields.values(), dispatch_id],
            )

    def record_start(self, dispatch_id: int, owner: str, **fields: object) -> bool:
        """Update a dispatch ``owner`` still holds and that has not ended; False (nothing
        written) when another orchestrator took it over meanwhile (this one was stopped)."""
        fields = encode(fields)
        sets = ", ".join(f"{name}=?" for name in fields)
        with self.transaction() as conn:
            cur = conn.execute(
                f"UPDATE dispatches SET {sets} WHERE id=? AND owner=? AND outcome IS NULL",  # noqa: S608
                [*fields.values(), dispatch_id, owner],
            )
            return cur.rowcount == 1

    def finish_dispatch(self, dispatch_id: int, outcome: str, **fields: object) -> bool:
        """Record the terminal outcome once; False when the dispatch had already ended."""
        fields = {"state": "ended", "outcome": outcome, "ended_at": self.clock(), **fields}
        fields = encode(fields)
        sets = ", ".join(f"{name}=?" for name in fields)
        with self.transaction() as conn:
            cur = conn.execute(
                f"UPDATE dispatches SET {sets} WHERE id=? AND outcome IS NULL",  # noqa: S608
                [*fields.values(), dispatch_id],
            )
            return cur.rowcount == 1

    def finish_with_reflection(
        self,
        dispatch_id: int,
        reflection: Reflection,
        followup: Followup | None = None,
        **fields: object,
    ) -> bool:
        """End the dispatch and keep its reflection on the row (the outbox), atomically.

        Returns False (and writes nothing) when the dispatch already ended: one reflection
        per dispatch, ever, even when two processes finish the same dispatch after a crash.
        Sinks are delivered from the outbox afterwards (see ``undelivered``).
        """
        now = self.clock()
        record = json.dumps(reflection_to_dict(reflection), sort_keys=True)
        fields = {
            "state": "ended",
            "outcome": reflection.outcome,
            "ended_at": now,
            "reflection": record,
            **fields,
        }
        sets = ", ".join(f"{name}=?" for name in fields)
        with self.transaction() as conn:
            cur = conn.execute(
                f"UPDATE dispatches SET {sets} WHERE id=? AND outcome IS NULL",  # noqa: S608
                [*fields.values(), dispatch_id],
            )
            if cur.rowcount != 1:
                return False
            self._routing_row(conn, dispatch_id, reflection, now)
            if followup is not None:
                self.write_followup(conn, reflection.gap_id, dispatch_id, followup)
        return True

    def undelivered(self, sinks: Iterable[str]) -> list[tuple[Reflection, list[str]]]:
        """Reflections some of ``sinks`` have not stored yet, with those sinks' names."""
        wanted = list(sinks)
        rows = self.conn.execute(
            "SELECT reflection, delivered FROM dispatches WHERE reflection IS NOT NULL ORDER BY id"
        ).fetchall()
        pending = []
        for record, delivered in rows:
            missing = [s for s in wanted if s not in json.loads(delivered)]
            if missing:
                pending.append((reflection_from_json(record), missing))
        return pending

    def mark_delivered(self, dispatch_id: int, sink: str) -> None:
        with self.transaction() as conn:
            (delivered,) = conn.execute(
                "SELECT delivered FROM dispatches WHERE id=?", (dispatch_id,)
            ).fetchone()
            names = sorted({*json.loads(delivered), sink})
            conn.execute(
                "UPDATE dispatches SET delivered=? WHERE id=?", (json.dumps(names), dispatch_id)
            )

    def insert_reflection(self, reflection: Reflection, directive: str) -> bool:
        """Store a reflection in the ``reflections`` table once per dispatch (idempotent)."""
        record = json.dumps(reflection_to_dict(reflection), sort_keys=True)
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO reflections(dispatch_id, gap_id, outcome, outcome_class, "
                "backend, directive, created_at, record) VALUES (?,?,?,?,?,?,?,?)",
                (
                    reflection.dispatch_id,
                    reflection.gap_id,
                    reflection.outcome,
                    outcome_class(reflection.outcome),
                    reflection.backend,
                    directive,
                    self.clock(),
                    record,
                ),
            )
            return cur.rowcount == 1

    def _routing_row(
        self, conn: sqlite3.Connection, dispatch_id: int, r: Reflection, now: float
    ) -> None:
        if r.cause in NEUTRAL_CAUSES:
            return  # a rate limit or a lost login says nothing about the arm's work
        # the arm's model (what routing chose), not the model the agent reported: the stats
        # of an arm are looked up by the arm
        row = conn.execute(
            "SELECT priority, effort, model FROM dispatches WHERE id=?", (dispatch_id,)
        ).fetchone()
        conn.execute(
            "INSERT INTO routing_outcomes(dispatch_id, task_class, priority, effort, backend, "
            "model, outcome, pr_number, duration_s, cost_usd, created_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                dispatch_id,
                r.gap_domain,
                row[0],
                row[1],
                r.backend,
                row[2] or "",
                r.outcome,
                r.pr_number,
                r.duration_s,
                r.cost_usd,
                now,
            ),
        )

    def reflections(self, limit: int = 100) -> list[dict[str, object]]:
        """Stored reflection records, newest first."""
        rows = self.conn.execute(
            "SELECT record FROM reflections ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def dispatch(self, dispatch_id: int) -> DispatchRow | None:
        cur = self.conn.cursor()
        cur.row_factory = dispatch_row
        return cur.execute("SELECT * FROM dispatches WHERE id=?", (dispatch_id,)).fetchone()

    def dispatches(
        self, where: str = "1", params: tuple[object, ...] = (), order: str = "id", limit: int = -1
    ) -> list[DispatchRow]:
        """Rows matching ``where`` (a trusted SQL fragment with ``?`` placeholders)."""
        cur = self.conn.cursor()
        cur.row_factory = dispatch_row
        sql = f"SELECT * FROM dispatches WHERE {where} ORDER BY {order} LIMIT ?"  # noqa: S608
        return cur.execute(sql, (*params, limit)).fetchall()

    def unfinished(self) -> list[DispatchRow]:
        """Dispatches without a terminal outcome (in flight, or orphaned by a crash)."""
        return self.dispatches("outcome IS NULL")

    def gap_ids(self, where: str = "1", params: tuple[object, ...] = ()) -> set[str]:
        """Gap ids of the dispatches matching ``where`` (a trusted SQL fragment)."""
        sql = f"SELECT DISTINCT gap_id FROM dispatches WHERE {where}"  # noqa: S608
        return {gap_id for (gap_id,) in self.conn.execute(sql, params)}

    def in_flight(self, others_than: str | None = None) -> list[DispatchRow]:
        """Unfinished dispatches whose agent may still be working: their orchestrator runs, or
        (orphaned by a crash) their agent process does. What counts against ``max_parallel``.
        ``others_than``: leave out that owner's (the caller counts its own)."""
        if others_than is None:
            rows = self.unfinished()
        else:
            rows = self.dispatches("outcome IS NULL AND owner != ?", (others_than,))
        live: dict[str, bool] = {}  # one look per owner, however many dispatches it has
        for row in rows:
            if row.owner not in live:
                live[row.owner] = self.live(row.owner)
        return [r for r in rows if live[r.owner] or group_alive(r.pid, r.pid_start)]

    def last_outcomes(self) -> dict[str, DispatchRow]:
        """The last ended dispatch of each gap."""
        rows = self.dispatches("outcome IS NOT NULL", order="id")
        return {row.gap_id: row for row in rows}

    def spent(self, since: float = 0.0, owner: str | None = None) -> float:
        """USD the agents reported for dispatches ended since ``since`` (of ``owner``)."""
        where = "ended_at >= ? AND cost_usd IS NOT NULL"
        params: list[object] = [since]
        if owner is not None:
            where += " AND owner = ?"
            params.append(owner)
        row = self.conn.execute(
            f"SELECT COALESCE(SUM(cost_usd), 0) FROM dispatches WHERE {where}",  # noqa: S608
            params,
        ).fetchone()
        return float(row[0])

    def shipped_ids(self) -> frozenset[str]:
        rows = self.conn.execute("SELECT gap_id FROM dispatches WHERE outcome='shipped'")
        return frozenset(r[0] for r in rows)
