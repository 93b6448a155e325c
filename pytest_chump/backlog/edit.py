"""Marking a gap done in a YAML backlog file by editing its text in place.

Teams write their backlogs by hand: comments, order, quoting and blank lines must survive, so
the file is never re-dumped. Only the gap's ``status``, ``closed_date`` and ``closed_pr`` lines
change (or are added after its last field); a one-line flow mapping (``- {id: X, ...}``) is
edited inside its braces. The result is read back and must differ from the original only in
that gap becoming done — otherwise nothing is written and the caller says why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from pytest_chump.backlog import FILE_FIELDS, check_files
from pytest_chump.core.model import Gap

_DASH = re.compile(r"^(?P<ind>[ ]*)-[ ]+(?P<rest>\S.*)$")
_FLOW_FIELD = r"(?P<key>\b{key}[ ]*:[ ]*)(?P<value>[^,}}]*)"


@dataclass(frozen=True)
class Done:
    """What marks a gap shipped: the day, and the pull request when there is one."""

    closed_date: str
    closed_pr: int | None = None

    def fields(self) -> dict[str, str]:
        found = {"status": "done", "closed_date": self.closed_date}
        if self.closed_pr is not None:
            found["closed_pr"] = str(self.closed_pr)
        return found


def mark_done(text: str, gap: Gap, done: Done) -> str | None:
    """``text`` with ``gap`` (read from it: ``gap.line`` is where its entry starts) marked
    done, or None when it cannot be done safely (nothing is changed then)."""
    lines = text.splitlines(keepends=True)
    if not 1 <= gap.line <= len(lines):
        return None
    first = lines[gap.line - 1]
    flow = _flow_start(first)
    if flow is not None:
        edited = _edit_flow(first, flow, done.fields())
        if edited is None:
            return None
        lines[gap.line - 1] = edited
    elif not _edit_block(lines, gap.line - 1, done.fields()):
        return None
    result = "".join(lines)
    return result if _only_this_gap_changed(text, result, gap) else None


def _flow_start(line: str) -> int | None:
    """Where a one-line flow mapping entry opens (``{``), else None."""
    match = _DASH.match(line.rstrip("\n"))
    rest_at = match.start("rest") if match else len(line) - len(line.lstrip(" "))
    if line[rest_at : rest_at + 1] == "{" and line.rstrip().endswith("}"):
        return rest_at
    return None


def _edit_flow(line: str, start: int, fields: Mapping[str, str]) -> str | None:
    body = line[start:].rstrip()
    tail = line[start + len(body) :]
    for key, value in fields.items():
        pattern = re.compile(_FLOW_FIELD.format(key=re.escape(key)))
        found = pattern.search(body)
        if found is not None:
            body = body[: found.end("key")] + value + body[found.end("value") :]
        else:
            body = body[:-1].rstrip() + f", {key}: {value}}}"
    return line[:start] + body + tail


def _edit_block(lines: list[str], first: int, fields: Mapping[str, str]) -> bool:
    """Set ``fields`` in the block mapping that starts at ``lines[first]``; False if unsafe."""
    head = lines[first].rstrip("\n")
    match = _DASH.match(head)
    indent = match.start("rest") if match else len(head) - len(head.lstrip(" "))
    end = _block_end(lines, first, indent)
    where: dict[str, int | None] = dict.fromkeys(fields)
    for i in range(first, end):
        text = lines[i]
        key_text = text[indent:] if i != first else head[indent:]
        for key in fields:
            if re.match(rf"{re.escape(key)}[ ]*:(?:[ ]|$)", key_text) and (
                i == first or text[:indent].strip() == ""
            ):
                if i + 1 < end and _indent_of(lines[i + 1]) > indent:
                    return False  # a multi-line value: do not guess
                where[key] = i
    for i in range(first, end):  # a key spelled otherwise ("status", tabs) would be doubled
        if any(_odd_key(key).match(lines[i]) for key in fields):
            return False
    insert_at = _last_field_line(lines, first, end) + 1
    newline = "\r\n" if lines[first].endswith("\r\n") else "\n"  # the file's own line ends
    added: list[str] = []
    for key, value in fields.items():
        at = where[key]
        if at is None:
            added.append(" " * indent + f"{key}: {value}{newline}")
            continue
        text = lines[at]
        colon = text.index(":", indent)
        body = text.rstrip("\r\n")
        ending = text[len(body) :]
        comment = re.search(r"[ \t]+#", body[colon:])  # a comment after the value stays
        tail = body[colon + comment.start() :] if comment else ""
        lines[at] = text[: colon + 1] + f" {value}{tail}{ending}"
    if added and not lines[insert_at - 1].endswith("\n"):
        lines[insert_at - 1] += newline
    lines[insert_at:insert_at] = added
    return True


def _odd_key(key: str) -> re.Pattern[str]:
    """``key`` written in a way the edit does not match: quoted, or followed by a tab."""
    return re.compile(rf"^[ ]*(?:-[ ]+)?(?:[\"']{re.escape(key)}[\"']|{re.escape(key)}\t)[ \t]*:")


def _indent_of(line: str) -> int:
    stripped = line.lstrip(" ")
    if not stripped.strip() or stripped.startswith("#"):
        return 10**6  # blank lines and comments belong to whatever surrounds them
    return len(line) - len(stripped)


def _block_end(lines: list[str], first: int, indent: int) -> int:
    """The index after the last line of the mapping whose keys sit at ``indent``."""
    for i in range(first + 1, len(lines)):
        if _indent_of(lines[i]) < indent:
            return i
    return len(lines)


def _last_field_line(lines: list[str], first: int, end: int) -> int:
    """The last line of the block that is not blank or a comment."""
    for i in range(end - 1, first, -1):
        if _indent_of(lines[i]) < 10**6:
            return i
    return first


def _only_this_gap_changed(before: str, after: str, gap: Gap) -> bool:
    """``before`` has ``gap`` where it says; ``after`` reads back with the same gaps, that
    one now done, the others unchanged."""
    gap_id = gap.id
    old = check_files([("f", before.encode())])  # any shape a backlog file may have
    new = check_files([("f", after.encode())])
    unreadable = [p for p in new.problems if p.gap_id is None and p.field in FILE_FIELDS]
    if unreadable or len(old.gaps) != len(new.gaps):
        return False
    if not any(g.id == gap_id and g.line == gap.line for g in old.gaps):
        return False  # the text is not the one the gap was read from
    for was, now in zip(old.gaps, new.gaps, strict=True):
        if was.id != now.id:
            return False
        if was.id == gap_id:
            if now.status != "done" or not now.closed_date:
                return False
            same = replace(now, status=was.status, closed_date=was.closed_date, line=was.line)
            if same != was:  # nothing else of the gap may change
                return False
        elif replace(was, line=now.line) != now:  # lines below an insertion move
            return False
    return True
