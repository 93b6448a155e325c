"""Lessons: counted facts about how earlier dispatches of similar gaps ended, for the next prompt.

An agent told that gaps like its own usually time out can plan for it; every sentence is a
count from the ``dispatches`` table (ended rows only), never an opinion.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_chump.core.model import Gap, domain_for, outcome_class
from pytest_chump.learn.routing import connection_of
from pytest_chump.state.database import DB_NAME
from pytest_chump.state.store import Store

Key = tuple[str, str, str]  # (domain, effort, backend)


@dataclass
class Tally:
    """Ended dispatches of one group: how many, how many shipped, how long, why they failed."""

    dispatches: int = 0
    shipped: int = 0
    minutes: list[float] = field(default_factory=list)
    causes: Counter[str] = field(default_factory=Counter)
    costs: list[float] = field(default_factory=list)  # USD, of those that reported it

    def add(
        self, outcome: str, cause: str, seconds: float | None, cost: float | None = None
    ) -> None:
        self.dispatches += 1
        self.shipped += outcome == "shipped"
        if seconds is not None:
            self.minutes.append(seconds / 60)
        if cost is not None:
            self.costs.append(cost)
        if outcome_class(outcome) == "failure":
            self.causes[cause or "unknown"] += 1

    def merge(self, other: Tally) -> None:
        self.dispatches += other.dispatches
        self.shipped += other.shipped
        self.minutes += other.minutes
        self.causes += other.causes
        self.costs += other.costs

    def sentence(self, label: str) -> str:
        """``label: 7 of 9 shipped (78%), median 14 min; failures: timeout x1, ...``."""
        rate = round(100 * self.shipped / self.dispatches)
        text = f"{label}: {self.shipped} of {self.dispatches} shipped ({rate}%)"
        if self.minutes:
            median = statistics.median(self.minutes)
            text += f", median {round(median)} min" if median >= 1 else ", median <1 min"
        if self.costs:
            text += f", median ${statistics.median(self.costs):.2f}"
        top = sorted(self.causes.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
        if top:
            text += "; failures: " + ", ".join(f"{cause} x{n}" for cause, n in top)
        return text


def open_history(state_dir: Path) -> sqlite3.Connection | None:
    """A read-only connection to ``<state_dir>/chump.db``, or None when there is none.

    Never creates the database or its directory, and never migrates or writes it.
    """
    path = state_dir / DB_NAME
    if not path.is_file():
        return None
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)


def history(source: Store | sqlite3.Connection) -> dict[Key, Tally]:
    """Ended dispatches grouped by (gap domain, effort, backend)."""
    conn = connection_of(source)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(dispatches)")}
    cost = "cost_usd" if "cost_usd" in columns else "NULL"  # a store not yet migrated
    rows = conn.execute(
        f"SELECT gap_id, effort, backend, outcome, cause, ended_at - started_at, {cost} "  # noqa: S608
        "FROM dispatches WHERE outcome IS NOT NULL ORDER BY id"
    )
    tallies: dict[Key, Tally] = {}
    for gap_id, effort, backend, outcome, cause, seconds, usd in rows:
        key = (domain_for(gap_id), effort, backend)
        tallies.setdefault(key, Tally()).add(outcome, cause, seconds, usd)
    return tallies


def label(domain: str, effort: str, backend: str) -> str:
    """``infra/s with claude``; ``*`` stands for any domain or effort, ``?`` for none given."""
    return f"{domain}/{effort or '?'} with {backend}"


@dataclass(frozen=True)
class Lesson:
    """What the dispatches of one group taught: ``*`` stands for any domain or effort, an
    empty effort for none given."""

    domain: str
    effort: str
    backend: str
    tally: Tally

    @property
    def label(self) -> str:
        return label(self.domain, self.effort, self.backend)

    def sentence(self) -> str:
        return self.tally.sentence(self.label)


def grouped(source: Store | sqlite3.Connection) -> list[Lesson]:
    """One lesson per (domain, effort, backend), most dispatches first."""
    tallies = history(source)
    order = sorted(tallies, key=lambda k: (-tallies[k].dispatches, k))
    return [Lesson(*k, tallies[k]) for k in order]


def all_lessons(source: Store | sqlite3.Connection) -> list[str]:
    """One sentence per (domain, effort, backend), most dispatches first."""
    return [lesson.sentence() for lesson in grouped(source)]


def lessons_of(
    source: Store | sqlite3.Connection, gap: Gap, backend: str, limit: int = 3
) -> list[Lesson]:
    """The lessons :func:`lessons_for` says, with their counts."""
    domain, effort = gap.domain, gap.effort
    levels: list[tuple[str, str, Callable[[Key], bool]]] = [
        (domain, effort, lambda k: k[:2] == (domain, effort)),
        (domain, "*", lambda k: k[0] == domain),
        ("*", effort, lambda k: k[1] == effort),
    ]
    tallies = {k: t for k, t in history(source).items() if k[2] == backend}
    merged = [
        Lesson(d, e, backend, _merged(t for k, t in tallies.items() if keep(k)))
        for d, e, keep in levels
    ]
    exact = merged[0].tally.dispatches
    kept = merged[:1] + [lesson for lesson in merged[1:] if lesson.tally.dispatches != exact]
    return [lesson for lesson in kept if lesson.tally.dispatches][:limit]


def lessons_for(
    source: Store | sqlite3.Connection, gap: Gap, backend: str, limit: int = 3
) -> list[str]:
    """Lessons for dispatching ``gap`` to ``backend``, most relevant first, at most ``limit``.

    Levels: same domain and effort, then same domain (any effort), then same effort (any
    domain), all with this backend. A wider level that holds exactly the dispatches of the
    exact one says nothing new and is left out; no history gives no lessons.
    """
    return [lesson.sentence() for lesson in lessons_of(source, gap, backend, limit)]


def _merged(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total
