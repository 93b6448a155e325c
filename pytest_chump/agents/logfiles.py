"""The files an agent's output goes to, and how the runner writes and follows them.

stdout goes to ``<slug>.log`` (where the runner also writes its own ``MARK`` lines) and stderr
to ``<slug>.stderr.log``, through descriptors the agent owns, so both outlive the orchestrator;
the runner follows them line by line, and a later orchestrator can read the same files.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

TAIL_POLL = 0.05  # seconds a follower waits at end of file before looking again
CHUNK = 65536
# the runner's own lines in the log start with this; the stdout follower skips them
MARK = "=== chump "
APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC


def stderr_log(log_path: Path) -> Path:
    """Where the agent's stderr goes: ``<dir>/<stem>.stderr.log`` next to ``log_path``."""
    return log_path.with_name(log_path.stem + ".stderr.log")


class RunnerLog:
    """The runner's side of the log: whole ``MARK`` lines, each one ``OAPPEND`` write.

    The agent appends its stdout to the same file through its own descriptor; one write per
    line keeps our lines whole between its writes.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fd = os.open(path, APPEND, 0o644)
        self._open = True
        self._lock = threading.Lock()

    def mark(self, event: str) -> None:
        line = f"{MARK}{datetime.now(UTC).isoformat(timespec='seconds')} {event} ===\n"
        with self._lock, contextlib.suppress(OSError):
            if self._open:
                os.write(self.fd, line.encode("utf-8", errors="replace"))

    def close(self) -> None:
        with self._lock:
            if self._open:
                self._open = False
                os.close(self.fd)


def open_at_end(path: Path) -> io.FileIO:
    """An unbuffered reader of ``path`` positioned at its current end (earlier runs' output)."""
    reader = io.FileIO(path, "r")
    reader.seek(0, os.SEEK_END)
    return reader


def follow(
    reader: io.FileIO, exited_event: threading.Event, emit: Callable[[bytes], None]
) -> None:
    """Hand each line of a growing file to ``emit`` (without its newline) until
    ``exited_event`` is set and the file is drained.

    A partial last line waits for its newline; it is emitted as is only at the end.
    """
    pending = b""
    with contextlib.suppress(OSError, ValueError):
        while True:
            exited = exited_event.is_set()  # before reading: a read after exit drains all
            chunk = reader.read(CHUNK)
            if chunk:
                *lines, pending = (pending + chunk).split(b"\n")
                for raw in lines:
                    emit(raw)
            elif exited:
                break
            else:
                exited_event.wait(TAIL_POLL)
        if pending:
            emit(pending)
