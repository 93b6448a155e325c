"""The plain records the flow passes along: a backlog as read (its gaps and every problem,
each tied to the gap it makes unusable), a pick request, a routing arm and its stats, an
outcome and its reflection. Values only, no I/O; hooks receive and return them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pytest_chump.core.errors import BacklogError
from pytest_chump.core.model import Gap

_INDEX_RE = re.compile(r"\[\d+\]")
_WHERE_RE = re.compile(r"\((?:first at )?(?:line \d+|[^()\s]*:\d+)\)")  # "(first at line 3)"


@dataclass(frozen=True, slots=True)
class PickRequest:
    """What the picker knows besides the backlog.

    ``slots`` is how many gaps may start now (capacity minus those in flight);
    ``done_ids`` counts as done for ``depends_on`` (backlog ``done`` plus shipped this run);
    ``busy_ids`` are leased or in flight and never picked again.
    """

    slots: int
    done_ids: frozenset[str] = frozenset()
    busy_ids: frozenset[str] = frozenset()
    kind: str = "any"
    order: str = "critical-path"
    statuses: frozenset[str] = frozenset({"open"})
    bias_threshold: float = 0.8
    bias_window: int = 10
    recently_done: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Arm:
    """A routing choice: which spawner runs a gap, with which model (None = its default)."""

    spawner: str
    model: str | None = None

    @property
    def label(self) -> str:
        return self.spawner if self.model is None else f"{self.spawner}:{self.model}"


@dataclass(frozen=True, slots=True)
class ArmStats:
    """Stored outcomes of one arm for a class of gaps."""

    successes: int = 0
    failures: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """A terminal outcome: one of ``model.OUTCOMES``, with its PR number and reason."""

    name: str
    pr_number: int | None = None
    reason: str = ""
    cause: str = ""
    failing_checks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reflection:
    """The record written once per terminal outcome (reference fields plus ours)."""

    gap_id: str
    effort: str
    gap_domain: str
    outcome: str
    duration_s: int
    parallel_siblings: int
    pr_number: int | None
    notes: str
    backend: str = ""
    model: str | None = None
    cost_usd: float | None = None
    turns: int | None = None
    exit_code: int | None = None
    kill_reason: str = ""
    failing_checks: tuple[str, ...] = ()
    dispatch_id: int | None = None
    cause: str = ""
    attempt: int = 1
    previous_dispatch_id: int | None = None  # the attempt before, when this one retried it
    input_tokens: int | None = None  # as the agent reported them
    output_tokens: int | None = None
    cache_tokens: int | None = None  # cache reads and writes


def reflection_to_dict(r: Reflection) -> dict[str, object]:
    """The reflection's fields by name, ``failing_checks`` as a list: its JSON form. (What
    ``dataclasses.asdict`` gives this flat record, without a deep copy of every field.)"""
    values = {name: getattr(r, name) for name in _REFLECTION_FIELDS}
    values["failing_checks"] = list(r.failing_checks)
    return values


def reflection_from_dict(data: Mapping[str, object]) -> Reflection:
    """A reflection back from its stored JSON form (unknown keys ignored)."""
    values = {k: v for k, v in data.items() if k in _REFLECTION_FIELDS}
    if isinstance(values.get("failing_checks"), list):
        values["failing_checks"] = tuple(values["failing_checks"])  # type: ignore[arg-type]
    return Reflection(**values)  # type: ignore[arg-type]


_REFLECTION_FIELDS = tuple(f.name for f in dataclasses.fields(Reflection))


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a backlog, located: ``path:line: field: message``.

    ``gap_id`` is the gap it makes unusable (None: an entry without a usable id, or the file);
    ``fatal`` means the backlog cannot be read as a whole (missing, not YAML, wrong shape).
    """

    path: str
    line: int
    field: str
    message: str
    gap_id: str | None = None
    fatal: bool = False

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.field}: {self.message}"

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What stays the same when lines move: file, gap, field without indexes, message."""
        message = _WHERE_RE.sub("(...)", self.message)
        return (self.path, self.gap_id or "", _INDEX_RE.sub("[]", self.field), message)

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "gap_id": self.gap_id,
            "fatal": self.fatal,
            "text": str(self),
        }


def raise_fatal(problems: Iterable[Problem]) -> None:
    """Raise ``BacklogError`` with every problem when one of them is fatal."""
    found = list(problems)
    if any(p.fatal for p in found):
        raise BacklogError(found)


@dataclass(frozen=True)
class Backlog:
    """Every gap read (quarantined ones too, for counting and dependencies) and the problems.

    Only :meth:`dispatchable` gaps may ever become a path, a branch, an argument or a prompt.
    """

    path: Path
    gaps: tuple[Gap, ...]
    problems: tuple[Problem, ...] = ()

    @cached_property
    def quarantined(self) -> frozenset[str]:
        """Ids of gaps that have a problem: never dispatched."""
        return frozenset(p.gap_id for p in self.problems if p.gap_id is not None)

    def dispatchable(self) -> tuple[Gap, ...]:
        """The gaps without a problem, in declared order."""
        bad = self.quarantined
        return self.gaps if not bad else tuple(g for g in self.gaps if g.id not in bad)

    def by_id(self) -> dict[str, Gap]:
        """Gap by id (the first of duplicates)."""
        found: dict[str, Gap] = {}
        for gap in self.gaps:
            found.setdefault(gap.id, gap)
        return found

    def done_ids(self) -> frozenset[str]:
        return frozenset(gap.id for gap in self.gaps if gap.status == "done")

    def problems_of(self, gap_id: str) -> list[Problem]:
        return [p for p in self.problems if p.gap_id == gap_id]

    def strict(self) -> Backlog:
        """This backlog when it has no problem, else ``BacklogError`` listing them all."""
        if self.problems:
            raise BacklogError(self.problems)
        return self
