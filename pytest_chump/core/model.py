"""The gap model shared by every part of chump: gaps, the id rules that keep ids safe, and a
backlog as read (its gaps and every problem found, each tied to the gap it makes unusable).

A gap id ends up in file paths, git ref names and argv; ``id_problem`` is the single
gatekeeper that decides whether an id may be used for any of those.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pytest_chump.core.errors import BacklogError

PRIORITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3", "P4")
EFFORTS: tuple[str, ...] = ("xs", "s", "m", "l", "xl")
STATUSES: tuple[str, ...] = (
    "open",
    "in_progress",
    "blocked",
    "deferred",
    "perpetual",
    "done",
    "wontfix",
    "superseded",
    "closed",
)
KINDS: tuple[str, ...] = ("user", "system")
PICKER_ORDERS: tuple[str, ...] = ("critical-path", "declared", "effort")
KIND_FILTERS: tuple[str, ...] = ("user", "system", "any")
OUTCOMES: tuple[str, ...] = ("shipped", "ci_failed", "stalled", "killed", "race_abandoned")
SUCCESS_OUTCOMES = frozenset({"shipped", "race_abandoned"})
"""Outcomes that count as a success for routing and lessons (a lost race still shipped the gap)."""

MAX_ID_LENGTH = 100
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_INDEX_RE = re.compile(r"\[\d+\]")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}
_EFFORT_RANK = {e: i for i, e in enumerate(EFFORTS)}
UNKNOWN_RANK = 99


@dataclass(frozen=True, slots=True)
class Gap:
    """One work item of the backlog. ``line`` is where it starts in ``origin`` (1-based)."""

    id: str
    title: str = ""
    description: str = ""
    priority: str = ""
    effort: str = ""
    status: str = "open"
    kind: str = "user"
    depends_on: tuple[str, ...] = ()
    closed_date: str = ""
    line: int = 0
    extra: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    origin: str = field(default="", compare=False, repr=False)
    """The file (or other source) it was read from, as shown in problems."""

    @property
    def slug(self) -> str:
        return slug_for(self.id)

    @property
    def domain(self) -> str:
        return domain_for(self.id)

    @property
    def priority_rank(self) -> int:
        return _PRIORITY_RANK.get(self.priority, UNKNOWN_RANK)

    @property
    def effort_rank(self) -> int:
        return _EFFORT_RANK.get(self.effort, UNKNOWN_RANK)


def outcome_class(outcome: str) -> str:
    """``success`` or ``failure``: how routing, lessons and reflections count an outcome."""
    return "success" if outcome in SUCCESS_OUTCOMES else "failure"


def slug_for(gap_id: str) -> str:
    """Worktree directory and branch suffix for an id: lowercase, ``_`` becomes ``-``."""
    return gap_id.lower().replace("_", "-")


def domain_for(gap_id: str) -> str:
    """Lowercased id prefix before the first dash (``INFRA-7`` -> ``infra``), else ``unknown``."""
    head, sep, _ = gap_id.partition("-")
    return head.lower() if sep and head else "unknown"


def id_problem(gap_id: str) -> str | None:
    """Why ``gap_id`` is unsafe as a path, git ref or argv element, or None when it is safe."""
    if not gap_id:
        return "is empty"
    if len(gap_id) > MAX_ID_LENGTH:
        return f"is {len(gap_id)} characters long (at most {MAX_ID_LENGTH})"
    if not _ID_RE.fullmatch(gap_id):  # the pattern admits no control character: check only now
        if _CONTROL_RE.search(gap_id):
            return f"{gap_id!r} contains a control character"
        return (
            f"{gap_id!r} is not a safe id: it must start with a letter or digit and use only "
            "letters, digits, '.', '_' and '-'"
        )
    if ".." in gap_id:
        return f"{gap_id!r} contains '..'"
    slug = slug_for(gap_id)
    if slug.endswith((".", ".lock")):
        return f"{gap_id!r} cannot end in '.' or '.lock' (not a valid git branch name)"
    return None


def require_safe_id(gap_id: str) -> str:
    """Return ``gap_id`` unchanged, or raise ``ValueError`` when it is unsafe."""
    problem = id_problem(gap_id)
    if problem is not None:
        raise ValueError(f"gap id {problem}")
    return gap_id


# --- a backlog as read: its gaps and every problem, each tied to its gap ---------------

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
        return (self.path, self.gap_id or "", _INDEX_RE.sub("[]", self.field), self.message)

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
