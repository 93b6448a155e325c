"""Backlog: reading YAML backlogs (a file or a directory of files) and validating them, every
problem tied to its gap, and the backlog at a git ref. May import: core, state.

Each problem reads ``{path}:{line}: {field}: {message}``. The work is split by job: ``reading``
(files to text), ``fastread`` (the usual layout, line by line) falling back to ``compose``
(PyYAML's node tree; yaml is imported only then), both feeding ``checks`` (each field and
id) and ``graph`` (unknown dependencies and cycles); ``model`` holds the result.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pytest_chump.backlog.checks import Checker
from pytest_chump.backlog.compose import read_tree
from pytest_chump.backlog.fastread import read_fast as _read_fast
from pytest_chump.backlog.graph import Found
from pytest_chump.backlog.reading import backlog_files, decode, read_bytes, read_file, shown_name
from pytest_chump.backlog.tagged import Flaw, tagged
from pytest_chump.core.errors import BacklogError
from pytest_chump.core.records import Backlog, Problem, raise_fatal

FILE_FIELDS = frozenset({"file", "yaml", "gaps"})  # problems of a file as a whole

__all__ = ["Backlog", "Problem", "check_bytes", "check_files", "check_mappings", "load_backlog"]


def load_backlog(
    path: Path, display: str | None = None, status_aliases: Mapping[str, str] | None = None
) -> Backlog:
    """Read and check the file or directory ``path``; ``BacklogError`` only when it cannot
    be read as a whole (missing, not YAML, wrong shape). Other problems are on the result."""
    shown = str(path) if display is None else display
    if path.is_dir():
        prefix = shown.rstrip("/") + "/"
        files = ((prefix + shown_name(f, path), f) for f in backlog_files(path))
        backlog = check_files(
            ((name, read_file(f), str(f)) for name, f in files), status_aliases
        )
        if not backlog.gaps and not backlog.problems:
            raise BacklogError([f"{shown}:1: file: no *.yaml or *.yml files in this directory"])
    else:
        backlog = check_bytes(read_bytes(path, shown), shown, status_aliases, str(path))
    raise_fatal(backlog.problems)
    return Backlog(path, backlog.gaps, backlog.problems)


def check_bytes(
    data: bytes,
    display: str,
    status_aliases: Mapping[str, str] | None = None,
    source: str = "",
) -> Backlog:
    """Parse and check one backlog file's ``data``; problems of the file as a whole are fatal."""
    text, flaw = decode(data)
    checker = Checker(status_aliases)
    if flaw is None:
        with _no_collection():
            if not _read_fast(text, checker.read(display, source=source)):  # tests spy on it
                checker = Checker(status_aliases)  # forget what it read before giving up
                flaws = read_tree(text, checker.read(display, source=source))
                for line, message in flaws:
                    checker.flaw(display, line, message)
    else:
        checker.flaw(display, *flaw)
    return _result(checker, Path(display), [display], fatal=True)


def check_files(
    files: Iterable[tuple[str, bytes | Flaw] | tuple[str, bytes | Flaw, str]],
    status_aliases: Mapping[str, str] | None = None,
) -> Backlog:
    """Check the files of a backlog directory as one backlog (ids and dependencies span
    files). Each file holds a list of gaps, a mapping with ``gaps:``, or one gap; a file that
    cannot be read is a problem of that file, not of the backlog. Items are ``(shown name,
    bytes or why unreadable[, path to open it])``."""
    checker, order = Checker(status_aliases), []
    with _no_collection():
        for display, data, *source in files:
            order.append(display)
            text, flaw = decode(data) if isinstance(data, bytes) else ("", data)
            emit = checker.read(display, source=source[0] if source else "")
            flaws = [flaw] if flaw else read_tree(text, emit, loose=True)
            for line, message in flaws:
                checker.flaw(display, line, message)
    return _result(checker, Path(order[0]).parent if order else Path("."), order, fatal=False)


def check_mappings(
    items: Iterable[tuple[str, Mapping[str, object]]],
    origin: str,
    status_aliases: Mapping[str, str] | None = None,
) -> Backlog:
    """Check gaps given as plain mappings (``{"id": ..., "priority": "P1", ...}``) by a source
    that is not a YAML file, e.g. an issue tracker: each item is ``(label, mapping)``, and its
    problems read ``<origin>: <label>.<field>: <message>``. The same checks as for YAML."""
    checker = Checker(status_aliases)
    for label, mapping in items:
        checker.read(origin, label)(tagged(dict(mapping)))
    return _result(checker, Path(origin), [origin], fatal=False)


@contextmanager
def _no_collection() -> Iterator[None]:
    """Everything a backlog read builds is acyclic: collector passes would only cost time."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _result(checker: Checker, path: Path, order: list[str], fatal: bool) -> Backlog:
    """The backlog ``checker`` saw; with ``fatal``, a problem of no gap is of the whole file."""
    gaps, found = checker.finish()
    rank = {name: i for i, name in enumerate(order)}
    found.sort(key=lambda f: (rank.get(f[0], len(rank)), f[1]))
    return Backlog(path, tuple(gaps), tuple(_problem(f, fatal) for f in found))


def _problem(found: Found, fatal: bool) -> Problem:
    origin, line, where, message, gap_id = found
    whole_file = gap_id is None and where in FILE_FIELDS
    return Problem(origin, line, where, message, gap_id, fatal and whole_file)
