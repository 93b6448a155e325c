"""Backlog files to text: which files a backlog directory holds, how their names are shown,
and the problems of a missing, unreadable or non-UTF-8 file."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_chump.backlog.tagged import Flaw
from pytest_chump.core.errors import BacklogError
from pytest_chump.core.redact import printable

SUFFIXES = (".yaml", ".yml")


def read_bytes(path: Path, shown: str) -> bytes:
    """The bytes of ``path``; raise ``BacklogError`` when it is missing or cannot be read."""
    data = read_file(path)
    if isinstance(data, bytes):
        return data
    raise BacklogError([f"{shown}:{data[0]}: {data[1]}"])


def read_file(path: Path) -> bytes | Flaw:
    """The bytes of ``path``, or the problem reading it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return (1, "file: not found")
    except OSError as exc:
        return (1, f"file: cannot read: {exc.strerror or exc}")


def decode(data: bytes) -> tuple[str, Flaw | None]:
    """The text of ``data`` (UTF-8, a BOM dropped), or ``""`` and why it is not text."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
        return "", (line, f"file: not valid UTF-8 ({bad})")


def backlog_files(root: Path) -> list[Path]:
    """Every ``*.yaml`` / ``*.yml`` file below ``root``, in path order.

    Symbolic links are not followed (a link could lead out of the repository), hidden
    folders (``.git``) are skipped, and names are only ever used to read and to show.
    """
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(folder)
        for name in files:
            path = base / name
            if name.endswith(SUFFIXES) and not path.is_symlink():
                found.append(path)
    return sorted(found, key=lambda path: path.relative_to(root).parts)


def shown_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as printed in problems: undecodable bytes, control
    characters and newlines escaped, so a hostile file name cannot forge lines or move the
    cursor (and is never taken as an id)."""
    return shown_text(path.relative_to(root).as_posix())


def shown_text(name: str) -> str:
    """A file name as printed: undecodable bytes and control characters escaped."""
    raw = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return printable(raw)
