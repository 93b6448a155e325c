"""The gap model shared by every part of chump, and the id rules that keep ids safe.

A gap id ends up in file paths, git ref names and argv; ``id_problem`` is the single
gatekeeper that decides whether an id may be used for any of those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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

# How the loop reacts to a failure's cause (``loop/react.py``): retry with what failed, retry
# after a backoff, or open the arm's circuit. Transient and circuit causes are not routing
# outcomes: they say nothing about how well the arm does the work.
FEEDBACK_CAUSES = frozenset(
    {"checks-failed", "tests-failed", "merge-conflict", "changes-requested"}
)
TRANSIENT_CAUSES = frozenset({"rate-limited", "network", "server-error", "worker-lost"})
CIRCUIT_CAUSES = frozenset({"auth", "quota-exhausted", "spawn-failed"})
NEUTRAL_CAUSES = TRANSIENT_CAUSES | CIRCUIT_CAUSES

MAX_ID_LENGTH = 100
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
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
    paths: tuple[str, ...] = ()  # where the work belongs (files, folders, globs): the scope
    scope: str = ""  # the scope in words
    line: int = 0
    extra: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    origin: str = field(default="", compare=False, repr=False)
    """The file (or other source) it was read from, as shown in problems (escaped)."""
    source: str = field(default="", compare=False, repr=False)
    """The path of the file it was read from, to open it (never shown as is)."""

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
