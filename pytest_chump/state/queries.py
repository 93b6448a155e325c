"""Read-only queries over ``.chump/chump.db`` for reporting commands such as ``chump reflections``.

The database is opened read-only and never created: looking at history must not change state,
nor make a ``.chump/`` directory appear in a repository that never dispatched anything.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pytest_chump.core.errors import ChumpError
from pytest_chump.core.records import Reflection, reflection_from_dict
from pytest_chump.state.database import read_only


@dataclass(frozen=True, slots=True)
class ReflectionQuery:
    """Filters for :func:`reflections`; None means "any"."""

    gap: str | None = None
    outcome: str | None = None
    backend: str | None = None
    """A spawner label: ``claude`` also matches ``claude:<model>``."""
    since: float | None = None
    """Epoch seconds: only reflections stored at or after it."""
    limit: int = 20


@dataclass(frozen=True, slots=True)
class StoredReflection:
    """One row of the ``reflections`` table."""

    id: int
    created_at: float
    directive: str
    reflection: Reflection


def _where(q: ReflectionQuery) -> tuple[str, list[object]]:
    clauses, params = ["1"], list[object]()
    if q.gap is not None:
        clauses.append("gap_id = ?")
        params.append(q.gap)
    if q.outcome is not None:
        clauses.append("outcome = ?")
        params.append(q.outcome)
    if q.backend is not None:
        clauses.append("(backend = ? OR substr(backend, 1, ?) = ?)")
        params += [q.backend, len(q.backend) + 1, f"{q.backend}:"]
    if q.since is not None:
        clauses.append("created_at >= ?")
        params.append(q.since)
    return " AND ".join(clauses), params


def reflections(path: Path, q: ReflectionQuery) -> list[StoredReflection]:
    """Stored reflections matching ``q``, newest first ([] when ``path`` does not exist)."""
    if not path.is_file():
        return []
    where, params = _where(q)
    sql = (
        "SELECT id, created_at, directive, record FROM reflections "  # noqa: S608
        f"WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?"
    )
    with read_only(path) as conn:
        try:
            rows = conn.execute(sql, [*params, q.limit]).fetchall()
        except sqlite3.Error as exc:
            raise ChumpError(f"{path}: cannot read reflections: {exc}") from None
    return [StoredReflection(i, t, d, reflection_from_dict(json.loads(r))) for i, t, d, r in rows]
