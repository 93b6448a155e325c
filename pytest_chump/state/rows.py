"""Rows of the ``dispatches`` table as values, and the encoding of their columns."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from pytest_chump.core.records import Reflection, reflection_from_dict


@dataclass(frozen=True, slots=True)
class DispatchRow:
    """One row of ``dispatches``."""

    id: int
    gap_id: str
    branch: str
    worktree: str
    backend: str
    model: str | None
    owner: str
    pid: int | None
    log_path: str | None
    effort: str
    priority: str
    started_at: float
    ended_at: float | None
    state: str
    outcome: str | None
    pr_number: int | None
    reason: str
    cause: str
    exit_code: int | None
    meta: str
    reflection: str | None = None
    delivered: str = "[]"

    @property
    def pid_start(self) -> str:
        """The agent process's start time as recorded (tells a recycled pid apart)."""
        return str(self.meta_dict.get("pid_start", ""))

    @property
    def meta_dict(self) -> dict[str, object]:
        data = json.loads(self.meta or "{}")
        return data if isinstance(data, dict) else {}


def reflection_from_json(text: str) -> Reflection:
    return reflection_from_dict(json.loads(text))


def encode(fields: dict[str, object]) -> dict[str, object]:
    """Column values ready for SQLite: ``meta`` is stored as JSON text."""
    meta = fields.get("meta")
    if meta is not None and not isinstance(meta, str):
        return {**fields, "meta": json.dumps(meta, sort_keys=True)}
    return fields


def dispatch_row(cursor: sqlite3.Cursor, row: tuple[object, ...]) -> DispatchRow:
    names = [column[0] for column in cursor.description]
    return DispatchRow(**dict(zip(names, row, strict=True)))
