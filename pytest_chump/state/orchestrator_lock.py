"""One orchestrator per repository when asked for (the git hooks ask): a lock and a pid file.

``.chump/orchestrator.lock`` is held with ``flock`` for the orchestrator's lifetime (the
kernel drops it if the process dies, so a crash never leaves a stale lock);
``.chump/orchestrator.pid`` says whom to nudge. A nudge is SIGUSR1: re-read the backlog.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = "orchestrator.lock"
PID_NAME = "orchestrator.pid"
NUDGE = signal.SIGUSR1


@contextlib.contextmanager
def exclusive(state_dir: Path) -> Iterator[bool]:
    """Hold the repository's orchestrator lock; yields False when another process holds it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        (state_dir / PID_NAME).write_text(f"{os.getpid()}\n")
        try:
            yield True
        finally:
            with contextlib.suppress(OSError):
                (state_dir / PID_NAME).unlink()
    finally:
        os.close(fd)


def running_pid(state_dir: Path) -> int | None:
    """The pid of the orchestrator holding the lock, or None when none is running."""
    try:
        fd = os.open(state_dir / LOCK_NAME, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(state_dir)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(state_dir: Path) -> int | None:
    try:
        text = (state_dir / PID_NAME).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def nudge(pid: int) -> bool:
    """Ask the orchestrator ``pid`` to re-read the backlog; False when it is gone."""
    try:
        os.kill(pid, NUDGE)
    except (ProcessLookupError, PermissionError):
        return False
    return True
