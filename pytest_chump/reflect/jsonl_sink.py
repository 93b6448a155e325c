"""The ``jsonl`` sink: each reflection appended as one JSON line to a file other tools can tail.

Each line is fsynced before the write returns. Writers in several processes take an
``fcntl`` lock on the file, so lines never interleave and a dispatch already in the file is
not written twice. Delivery from the outbox is at-least-once (a crash between this write and
the outbox marking it delivered repeats it); this sink dedupes on ``dispatch_id`` itself, and
``dispatch_id`` is the key a consumer should dedupe on too, e.g. after merging files.

The file is ``$CHUMP_JSONL_PATH`` (relative to the repository root when relative), else
``<repo_root>/.chump/reflections.jsonl``. ``created_at`` is when the line was written.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from pytest_chump import hookimpl
from pytest_chump.core.config import Settings
from pytest_chump.core.protocols import Register
from pytest_chump.core.records import Reflection
from pytest_chump.reflect.record import exported

PATH_ENV = "CHUMP_JSONL_PATH"
FILE_NAME = "reflections.jsonl"


def jsonl_path(settings: Settings, env: Mapping[str, str] | None = None) -> Path:
    """Where the sink appends: ``$CHUMP_JSONL_PATH`` or ``.chump/reflections.jsonl``."""
    given = (os.environ if env is None else env).get(PATH_ENV, "").strip()
    if not given:
        return settings.state_dir / FILE_NAME
    path = Path(given).expanduser()
    return path if path.is_absolute() else settings.repo_root / path


class JsonlSink:
    name = "jsonl"

    def __init__(
        self, settings: Settings, path: Path | None = None, now: Callable[[], float] = time.time
    ) -> None:
        self.path = path or jsonl_path(settings)
        self.now = now

    def write(self, reflection: Reflection) -> None:
        """Append ``reflection`` as one fsynced line, unless its dispatch is already there."""
        line = json.dumps(exported(reflection, self.now()), sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
            if reflection.dispatch_id is not None and self.has(reflection.dispatch_id):
                return
            _write_all(fd, (_separator(fd) + line).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)

    def has(self, dispatch_id: int) -> bool:
        """Whether a line for ``dispatch_id`` is already in the file."""
        needle = f'"dispatch_id": {dispatch_id}'.encode()
        try:
            with self.path.open("rb") as lines:
                return any(needle in line and _dispatch_of(line) == dispatch_id for line in lines)
        except FileNotFoundError:
            return False


def _dispatch_of(line: bytes) -> object:
    try:
        record = json.loads(line)
    except ValueError:  # a line torn by a crash mid-write
        return None
    return record.get("dispatch_id") if isinstance(record, dict) else None


def _separator(fd: int) -> str:
    """A newline when the file ends inside a line torn by a crash, so ours starts clean."""
    size = os.fstat(fd).st_size
    return "\n" if size and os.pread(fd, 1, size - 1) != b"\n" else ""


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@hookimpl
def chump_register_sinks(register: Register) -> None:
    register("jsonl", JsonlSink)
