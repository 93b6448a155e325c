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
    attempt: int = 1
    previous_id: int | None = None
    cost_usd: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_cache: int | None = None

    @property
    def pid_start(self) -> str:
        """The agent process's start time as recorded (tells a recycled pid apart)."""
        return str(self.meta_dict.get("pid_start", ""))

    @property
    def meta_dict(self) -> dict[str, object]:
        data = json.loads(self.meta or "{}")
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True, slots=True)
class RetryRow:
    """A gap's next attempt, scheduled: due at ``not_before``; ``feedback_n`` and
    ``transient_n`` count the retries of each kind in its chain so far."""

    gap_id: str
    kind: str  # feedback / transient / manual
    cause: str  # what failed last (merge-conflict: the branch is updated first)
    not_before: float
    previous_id: int | None
    attempt: int
    feedback_n: int
    transient_n: int
    feedback: str
    created_at: float


@dataclass(frozen=True, slots=True)
class HoldRow:
    """A gap held for a human (``needs-human``): never dispatched until ``chump retry``."""

    gap_id: str
    reason: str
    dispatch_id: int | None
    since: float
    cause: str = ""  # what failed last
    feedback: str = ""  # what the attempt after ``chump retry`` is told


@dataclass(frozen=True, slots=True)
class CircuitRow:
    """An open circuit: no dispatch to ``arm`` until the run that opened it ends."""

    arm: str
    owner: str
    message: str
    opened_at: float


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
