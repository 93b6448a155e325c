"""Backlog file to text: the problems of a missing, unreadable or non-UTF-8 file."""

from __future__ import annotations

from pathlib import Path

from pytest_chump.core.errors import BacklogError


def read_bytes(path: Path, shown: str) -> bytes:
    """The bytes of ``path``; raise ``BacklogError`` when it is missing or cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BacklogError([f"{shown}:1: file: not found"]) from None
    except OSError as exc:
        raise BacklogError([f"{shown}:1: file: cannot read: {exc.strerror or exc}"]) from None


def decode(data: bytes, display: str) -> tuple[str, list[str]]:
    """The text of ``data`` (UTF-8, a BOM dropped), or ``""`` and the one problem line."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
        return "", [f"{display}:{line}: file: not valid UTF-8 ({bad})"]
