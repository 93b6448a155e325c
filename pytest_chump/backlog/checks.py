"""Checking each entry as it is read: every field, then the id (duplicates, safety, slugs).

Problems are ``(line, "field: message")``; the checks across gaps are in ``graph``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from pytest_chump.backlog.graph import Entry, dependency_problems
from pytest_chump.backlog.tagged import DATE, LIST, MAP, NULL, STR, Problem, Value, describe
from pytest_chump.core.model import EFFORTS, KINDS, PRIORITIES, STATUSES, Gap, id_problem, slug_for

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

_Check = Callable[["Checker", int, str, Value], Any]  # (checker, gap index, field, value)


def _text(c: Checker, i: int, name: str, value: Value) -> str | None:
    if value[0] == STR:
        return value[1]
    c.fail(value[2], f"gaps[{i}].{name}", f"must be a string, got {describe(value)}")
    return None


def _choice(allowed: tuple[str, ...]) -> _Check:
    """A checker accepting one of ``allowed`` (exact case), hinting at case slips."""
    members = frozenset(allowed)
    folded = {choice.lower(): choice for choice in allowed}
    expected = ", ".join(allowed)

    def check(c: Checker, i: int, name: str, value: Value) -> str | None:
        if value[0] == STR and value[1] in members:
            return value[1]
        if value[0] != STR:
            return _text(c, i, name, value)
        hint = folded.get(value[1].lower())
        tail = f"; did you mean {hint!r}?" if hint else ""
        message = f"unknown {name} {value[1]!r} (expected one of {expected}{tail})"
        c.fail(value[2], f"gaps[{i}].{name}", message)
        return None

    return check


def _depends_on(c: Checker, i: int, name: str, value: Value) -> tuple[str, ...] | None:
    where = f"gaps[{i}].{name}"
    if value[0] != LIST:
        c.fail(value[2], where, f"must be a list of ids, got {describe(value)}")
        return None
    for k, item in enumerate(value[1]):
        if item[0] != STR:
            c.fail(item[2], f"{where}[{k}]", f"must be an id string, got {describe(item)}")
    return tuple(item[1] for item in value[1] if item[0] == STR)


def _closed_date(c: Checker, i: int, name: str, value: Value) -> str | None:
    tag, text, line = value
    if tag in (STR, DATE) and _ISO_DATE.fullmatch(text) and _real_date(text):
        return str(text)
    c.fail(line, f"gaps[{i}].{name}", f"must be an ISO date (YYYY-MM-DD), got {describe(value)}")
    return None


def _real_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


_FIELDS: dict[str, _Check] = {
    "title": _text,
    "description": _text,
    "priority": _choice(PRIORITIES),
    "effort": _choice(EFFORTS),
    "status": _choice(STATUSES),
    "kind": _choice(KINDS),
    "depends_on": _depends_on,
    "closed_date": _closed_date,
}


class Checker:
    """Checks entries as they are read; collects every problem as (line, "field: message")."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.gaps: list[Gap] = []  # built only while no problem is known
        self.entries: list[Entry] = []
        self.first: dict[str, Entry] = {}  # string id -> its first entry
        self.loose: set[str] = set()  # text of ids that are scalars but not strings
        self.slugs: dict[str, Entry] = {}
        self.count = 0

    def fail(self, line: int, where: str, message: str) -> None:
        self.problems.append((line, f"{where}: {message}"))

    def entry(self, value: Value) -> None:
        """Check one entry of the gaps list (called in declared order)."""
        i, self.count = self.count, self.count + 1
        tag, fields, line = value
        if tag != MAP:
            return self.fail(line, f"gaps[{i}]", f"expected a mapping, got {describe(value)}")
        kwargs: dict[str, Any] = {"line": line}
        for name, field in fields.items():
            check = _FIELDS.get(name)
            if check is not None and field[0] != NULL:  # null counts as missing
                kwargs[name] = check(self, i, name, field)
        if "id" not in fields:
            return self.fail(line, f"gaps[{i}].id", "missing")
        kwargs["id"] = gap_id = self.string_id(i, fields["id"])
        if gap_id is not None:
            deps = kwargs.get("depends_on") or ()
            self.track(Entry(i, gap_id, fields["id"][2], deps, fields.get("depends_on")))
        if not self.problems:
            self.gaps.append(Gap(**kwargs))
        return None

    def string_id(self, i: int, value: Value) -> str | None:
        tag, gap_id, line = value
        if tag == STR:
            return gap_id
        if tag not in (LIST, MAP, NULL):
            self.loose.add(gap_id)
        self.fail(line, f"gaps[{i}].id", f"must be a string, got {describe(value)}")
        return None

    def track(self, entry: Entry) -> None:
        """Register a string id: a duplicate, an unsafe id, or a node of the dependency graph."""
        self.entries.append(entry)
        first = self.first.setdefault(entry.id, entry)
        if first is not entry:
            at = first.id_line
            return self.fail(
                entry.id_line, entry.where, f"duplicate id {entry.id!r} (first at line {at})"
            )
        problem = id_problem(entry.id)
        if problem is not None:
            return self.fail(entry.id_line, entry.where, problem)
        entry.valid = True
        other = self.slugs.setdefault(slug_for(entry.id), entry)
        if other is not entry:
            same = f"has the same branch/worktree name as {other.id!r} (line {other.id_line})"
            self.fail(entry.id_line, entry.where, f"{entry.id!r} {same}")
        return None

    def finish(self) -> tuple[list[Gap], list[Problem]]:
        self.problems += dependency_problems(self.entries, self.first, self.loose)
        return ([], self.problems) if self.problems else (self.gaps, [])
