"""The files an agent's output goes to, and how the runner follows and annotates them.

The agent's supervisor (:mod:`~pytest_chump.core.supervisor`) writes stdout to
``<slug>.log`` (with the runner's own ``MARK`` lines) and stderr to ``<slug>.stderr.log``,
masked and capped: at half the cap a file is renamed to ``<name>.1`` and a new one begun.
Threads here follow both files line by line across those renames; a later orchestrator reads
the same files, and the agent's identity record next to them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_chump.core.supervisor import APPEND, MARK, mark_line

__all__ = ["APPEND", "MARK", "append_mark", "follow", "open_at_end", "read_record", "stderr_log"]

TAIL_POLL = 0.05  # seconds a follower waits at end of file before looking again
CHUNK = 65536


def stderr_log(log_path: Path) -> Path:
    """Where the agent's stderr goes: ``<dir>/<stem>.stderr.log`` next to ``log_path``."""
    return log_path.with_name(log_path.stem + ".stderr.log")


def append_mark(log_path: Path, event: str) -> None:
    """Add one runner line to the log (one ``O_APPEND`` write: it stays whole)."""
    with contextlib.suppress(OSError):
        fd = os.open(log_path, APPEND, 0o644)
        try:
            os.write(fd, mark_line(event))
        finally:
            os.close(fd)


def read_record(path: Path | None) -> dict[str, Any]:
    """The supervisor's identity record of an agent (``{}`` when there is none)."""
    if path is None:
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def open_at_end(path: Path) -> io.FileIO:
    """An unbuffered reader of ``path`` positioned at its current end (earlier runs' output)."""
    reader = io.FileIO(path, "r")
    reader.seek(0, os.SEEK_END)
    return reader


def _successor(reader: io.FileIO, path: Path) -> Path | None:
    """The file to read after ``reader`` (drained) when ``path`` was rotated since it was
    opened: ``<path>.1`` when that is not ``reader``'s file (rotated twice meanwhile: the
    one between), else ``path``. None when not rotated."""
    try:
        current = os.fstat(reader.fileno()).st_ino
        if os.stat(path).st_ino == current:
            return None
    except OSError:
        return None  # between the rename and the new file: look again later
    older = path.with_name(path.name + ".1")
    try:
        return path if os.stat(older).st_ino == current else older
    except OSError:
        return path


def follow(
    reader: io.FileIO,
    path: Path,
    exited_event: threading.Event,
    emit: Callable[[bytes], None],
) -> None:
    """Hand each line of the growing file ``path`` to ``emit`` (without its newline) until
    ``exited_event`` is set and the file is drained; closes the readers it used.

    Starts with ``reader``; when the file was rotated, the old one is drained and its
    successor read from the start. A follower more than one rotation behind the writer
    loses the files in between (the disk cap outranks it; the log keeps the newest).
    A partial last line waits for its newline; it is emitted as is only at the end.
    """
    pending = b""
    try:
        with contextlib.suppress(OSError, ValueError):
            while True:
                exited = exited_event.is_set()  # before reading: a read after exit drains all
                chunk = reader.read(CHUNK)
                if chunk:
                    *lines, pending = (pending + chunk).split(b"\n")
                    for raw in lines:
                        emit(raw)
                elif (successor := _successor(reader, path)) is not None:
                    reader.close()
                    reader = io.FileIO(successor, "r")
                elif os.fstat(reader.fileno()).st_size < reader.tell():  # truncated in place
                    reader.seek(0)
                elif exited:
                    break
                else:
                    exited_event.wait(TAIL_POLL)
            if pending:
                emit(pending)
    finally:
        reader.close()
