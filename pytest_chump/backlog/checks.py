"""Checking each entry as it is read: every field, then the id (duplicates, safety, slugs).

Problems are ``Found`` tuples ``(origin, line, field, message, gap id)``; the checks across
gaps are in ``graph``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from pytest_chump.backlog.graph import Entry, Found, dependency_problems
from pytest_chump.backlog.tagged import DATE, LIST, MAP, NULL, STR, Value, describe
from pytest_chump.core.model import EFFORTS, KINDS, PRIORITIES, STATUSES, Gap, id_problem, slug_for

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

_Check = Callable[["Checker", str, str, Value], Any]  # (checker, "gaps[i].", field, value)


def _text(c: Checker, at: str, name: str, value: Value) -> str | None:
    if value[0] == STR:
        return value[1]
    c.fail(value[2], at + name, f"must be a string, got {describe(value)}")
    return None


def _choice(allowed: tuple[str, ...]) -> _Check:
    """A checker accepting one of ``allowed`` (exact case), hinting at case slips."""
    members = frozenset(allowed)
    folded = {choice.lower(): choice for choice in allowed}
    expected = ", ".join(allowed)

    def check(c: Checker, at: str, name: str, value: Value) -> str | None:
        if value[0] == STR and value[1] in members:
            return value[1]
        if value[0] != STR:
            return _text(c, at, name, value)
        hint = folded.get(value[1].lower())
        tail = f"; did you mean {hint!r}?" if hint else ""
        message = f"unknown {name} {value[1]!r} (expected one of {expected}{tail})"
        c.fail(value[2], at + name, message)
        return None

    return check


def _depends_on(c: Checker, at: str, name: str, value: Value) -> tuple[str, ...] | None:
    return _strings(c, at + name, value, "an id", "ids")


def _paths(c: Checker, at: str, name: str, value: Value) -> tuple[str, ...] | None:
    if value[0] == STR:  # one path needs no list
        return (value[1],)
    return _strings(c, at + name, value, "a path", "paths")


def _strings(c: Checker, where: str, value: Value, one: str, many: str) -> tuple[str, ...] | None:
    """A list of strings (``one``: "an id", ``many``: "ids"); each item not one is a problem."""
    if value[0] != LIST:
        c.fail(value[2], where, f"must be a list of {many}, got {describe(value)}")
        return None
    for k, item in enumerate(value[1]):
        if item[0] != STR:
            c.fail(item[2], f"{where}[{k}]", f"must be {one} string, got {describe(item)}")
    return tuple(item[1] for item in value[1] if item[0] == STR)


def _closed_date(c: Checker, at: str, name: str, value: Value) -> str | None:
    tag, text, line = value
    if tag in (STR, DATE) and _ISO_DATE.fullmatch(text) and _real_date(text):
        return str(text)
    c.fail(line, at + name, f"must be an ISO date (YYYY-MM-DD), got {describe(value)}")
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
    "paths": _paths,
    "scope": _text,
}


class Checker:
    """Checks entries as they are read, from one or several files (``origin``), and builds a
    gap for every entry with a string id; each problem names the gap it belongs to."""

    def __init__(self, status_aliases: Mapping[str, str] | None = None) -> None:
        self.found: list[Found] = []
        self.gaps: list[Gap] = []
        self.entries: list[Entry] = []
        self.first: dict[str, Entry] = {}  # string id -> its first entry
        self.loose: set[str] = set()  # text of ids that are scalars but not strings
        self.slugs: dict[str, Entry] = {}
        self.origin = ""
        self.source = ""
        self.label: str | None = None
        self.counts: dict[str, int] = {}  # entries read per origin
        self.fields = dict(_FIELDS)
        if status_aliases:
            self.fields["status"] = _aliased(_FIELDS["status"], status_aliases)

    def fail(self, line: int, where: str, message: str) -> None:
        self.found.append((self.origin, line, where, message, None))

    def flaw(self, origin: str, line: int, text: str) -> None:
        """A problem of a whole file (``field: message`` text), not of one gap."""
        where, _, message = text.partition(": ")
        self.found.append((origin, line, where, message, None))

    def read(
        self, origin: str, label: str | None = None, source: str = ""
    ) -> Callable[[Value], None]:
        """The ``emit`` callback for the entries of ``origin`` (a file, or a source's item).

        Fields are named ``gaps[i].field``, or ``<label>.field`` (just ``field`` when the
        label is empty) for sources whose items are not list entries.
        """
        self.origin, self.label, self.source = origin, label, source
        self.counts.setdefault(origin, 0)
        return self.entry

    def entry(self, value: Value) -> None:
        """Check one entry of the gaps list (called in declared order)."""
        i = self.counts.get(self.origin, 0)
        self.counts[self.origin] = i + 1
        name = self.label if self.label is not None else f"gaps[{i}]"
        at = f"{name}." if name else ""
        tag, fields, line = value
        if tag != MAP:
            return self.fail(line, name or "gap", f"expected a mapping, got {describe(value)}")
        start = len(self.found)
        kwargs: dict[str, Any] = {"line": line}
        for key, field in fields.items():
            check = self.fields.get(key)
            if check is not None and field[0] != NULL:  # null counts as missing
                checked = check(self, at, key, field)
                if checked is not None:
                    kwargs[key] = checked
                elif key == "status" and field[0] == STR:
                    kwargs[key] = field[1]  # unknown: kept as written, never "open"
        if "id" not in fields:
            return self.fail(line, f"{at}id", "missing")
        gap_id = self.string_id(at, fields["id"])
        if gap_id is None:
            return None
        kwargs["id"] = gap_id
        if self.origin:
            kwargs["origin"] = self.origin
        if self.source:
            kwargs["source"] = self.source
        self.gaps.append(Gap(**kwargs))
        deps = kwargs.get("depends_on") or ()
        entry = Entry(at, gap_id, fields["id"][2], deps, fields.get("depends_on"), self.origin)
        self.track(entry)
        for k in range(start, len(self.found)):  # the entry's own problems belong to its gap
            self.found[k] = (*self.found[k][:4], gap_id)
        return None

    def string_id(self, at: str, value: Value) -> str | None:
        tag, gap_id, line = value
        if tag == STR:
            return gap_id
        if tag not in (LIST, MAP, NULL):
            self.loose.add(gap_id)
        self.fail(line, f"{at}id", f"must be a string, got {describe(value)}")
        return None

    def track(self, entry: Entry) -> None:
        """Register a string id: a duplicate, an unsafe id, or a node of the dependency graph."""
        self.entries.append(entry)
        first = self.first.setdefault(entry.id, entry)
        if first is not entry:
            at = _line_of(first, entry)
            # the problem carries the id: every gap of that id is quarantined, which is meant
            # being unknowable
            return self.fail(
                entry.id_line, entry.where, f"duplicate id {entry.id!r} (first at {at})"
            )
        problem = id_problem(entry.id)
        if problem is not None:
            return self.fail(entry.id_line, entry.where, problem)
        entry.valid = True
        other = self.slugs.setdefault(slug_for(entry.id), entry)
        if other is not entry:
            same = f"has the same branch/worktree name as {other.id!r} ({_line_of(other, entry)})"
            self.fail(entry.id_line, entry.where, f"{entry.id!r} {same}")
        return None

    def finish(self) -> tuple[list[Gap], list[Found]]:
        """Every gap built and every problem, including those across gaps (ids, cycles)."""
        return self.gaps, self.found + dependency_problems(self.entries, self.first, self.loose)


def _line_of(first: Entry, later: Entry) -> str:
    """Where ``first`` is, said from ``later``: ``line N``, or ``path:N`` in another file."""
    if first.origin == later.origin:
        return f"line {first.id_line}"
    return f"{first.origin}:{first.id_line}"


def _aliased(check: _Check, aliases: Mapping[str, str]) -> _Check:
    """The status check, with team statuses mapped onto chump's first (``shipped = "done"``)."""

    def aliased(c: Checker, at: str, name: str, value: Value) -> Any:
        if value[0] == STR and value[1] in aliases:
            value = (STR, aliases[value[1]], value[2])
        return check(c, at, name, value)

    return aliased
