"""Backlog: reading the YAML backlog and validating it, reporting every problem as one line,
and the backlog as committed at a git ref. May import: core, state.

Each problem reads ``{display}:{line}: {field}: {message}``; a clean file yields ``Gap`` objects.
The work is split by job: ``reading`` (file to text), ``fastread`` (the usual layout, line by
line) falling back to ``compose`` (PyYAML's node tree; yaml is imported only then), both
feeding ``checks`` (each field and id) and ``graph`` (unknown dependencies and cycles).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path

from pytest_chump.backlog.checks import Checker
from pytest_chump.backlog.compose import read_tree
from pytest_chump.backlog.fastread import read_fast as _read_fast
from pytest_chump.backlog.reading import decode, read_bytes
from pytest_chump.backlog.tagged import Problem
from pytest_chump.core.errors import BacklogError
from pytest_chump.core.model import Gap

__all__ = ["Backlog", "check_bytes", "load_backlog"]


@dataclass(frozen=True, slots=True)
class Backlog:
    """A validated backlog: its file and its gaps in declared order."""

    path: Path
    gaps: tuple[Gap, ...]

    def by_id(self) -> dict[str, Gap]:
        return {gap.id: gap for gap in self.gaps}

    def done_ids(self) -> frozenset[str]:
        return frozenset(gap.id for gap in self.gaps if gap.status == "done")


def load_backlog(path: Path, display: str | None = None) -> Backlog:
    """Read and validate ``path``; raise ``BacklogError`` listing every problem."""
    shown = str(path) if display is None else display
    gaps, problems = check_bytes(read_bytes(path, shown), shown)
    if problems:
        raise BacklogError(problems)
    return Backlog(path, tuple(gaps))


def check_bytes(data: bytes, display: str) -> tuple[list[Gap], list[str]]:
    """Parse and validate ``data``; return (gaps, problems). Gaps mean something only if clean."""
    text, problems = decode(data, display)
    if problems:
        return [], problems
    collecting = gc.isenabled()
    gc.disable()  # everything built here is acyclic: collector passes would only cost time
    try:
        gaps, found = _check(text)
    finally:
        if collecting:
            gc.enable()
    return gaps, [f"{display}:{line}: {text}" for line, text in sorted(found, key=_line)]


def _line(problem: Problem) -> int:
    return problem[0]


def _check(text: str) -> tuple[list[Gap], list[Problem]]:
    """Read with the fast reader (looked up here, so tests can spy on it), else compose."""
    checker = Checker()
    if not _read_fast(text, checker.entry):
        checker = Checker()
        checker.problems.extend(read_tree(text, checker.entry))
    return checker.finish()
