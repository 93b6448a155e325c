"""The supervisor: a tiny process between the orchestrator and an agent, one per dispatch.

It makes an agent's identity durable before the agent can do anything, and its end knowable
by whichever orchestrator looks later:

1. The orchestrator starts it (its own session: it leads the process group every signal goes
   to), records its pid in the store, and only then sends the *header* on stdin: a length line
   and a JSON object with the agent's argv, log paths, identity record, log cap and the secret
   values to mask. An orchestrator that dies before sending it leaves a supervisor that reads
   end-of-file, records ``"started": false`` and exits: no agent ever runs untracked.
2. It starts the agent (stdin: the rest of its own stdin, the prompt), writes the identity
   record (its pid = the group, the agent's pid) and acknowledges on its stdout, then closes
   it: the orchestrator may die at any moment afterwards.
3. It copies the agent's stdout and stderr into ``<slug>.log`` and ``<slug>.stderr.log`` line
   by line, with every secret value and token-shaped string masked *before* the line reaches
   the disk, so the log is safe whichever process reads it later; each file is capped at
   ``max_bytes`` on disk (the live file rotates into ``.1`` at half of it: the tail is kept).
4. When the agent exits it writes the exit status into the record, then exits itself.

SIGTERM, SIGINT and SIGHUP reach the agent with the supervisor (one process group); the
supervisor outlives them to record how the agent ended. Run as ``python -I -S supervisor.py``:
this file imports nothing but the standard library, so it starts in milliseconds and no
module in the agent's working directory can shadow one of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

MARK = "=== chump "  # the runner's own lines in the log start with this
APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
LONG_LINE = 8 << 20  # bytes without a newline written out as one piece (bounds memory)
READ_SIZE = 65536
MASK = b"[REDACTED]"
HEADER_LIMIT = 1 << 22  # a header past this is not ours
EXIT_GRACE = 2.0  # seconds to drain output still in the pipes after the agent exited


def mark_line(event: str) -> bytes:
    """One runner line for the log, timestamped, newline-terminated."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return f"{MARK}{stamp} {event} ===\n".encode("utf-8", errors="replace")


def encode_header(header: dict[str, Any]) -> bytes:
    """The framing the supervisor reads from its stdin: a decimal length line, then JSON."""
    body = json.dumps(header).encode("utf-8")
    return str(len(body)).encode() + b"\n" + body


def write_record(path: str, record: dict[str, Any]) -> None:
    """Replace the identity record atomically (readers see the old or the new one)."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(record, stream)
    os.replace(temporary, path)


class Masker:
    """Masks secret values and token shapes in one line of bytes."""

    def __init__(self, secrets: Iterable[str], rules: Iterable[tuple[str, int, int]]) -> None:
        parts = {p for s in secrets for p in s.splitlines() if len(p.strip()) >= 6}
        self.values = sorted((p.encode() for p in parts), key=len, reverse=True)
        self.rules = [(re.compile(p.encode(), flags & ~re.U), keep) for p, flags, keep in rules]

    def __call__(self, line: bytes) -> bytes:
        for value in self.values:
            if value in line:
                line = line.replace(value, MASK)
        for pattern, keep in self.rules:
            line = pattern.sub(_replacement(keep), line)
        return line

    def safe_cut(self, data: bytes, cut: int) -> int:
        """``cut`` moved past any secret value that spans it."""
        for value in self.values:
            start = data.find(value, max(0, cut - len(value) + 1), cut + len(value) - 1)
            if 0 <= start < cut < start + len(value):
                cut = start + len(value)
        return cut


def _replacement(keep: int) -> Callable[[re.Match[bytes]], bytes]:
    return lambda m: (m.group(keep) if keep else b"") + MASK


class CappedLog:
    """An append-only log file that rotates into ``<path>.1`` at half of ``max_bytes``."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self.path, self.limit = path, max(max_bytes // 2, 1)
        self.fd = os.open(path, APPEND, 0o644)
        self.size = os.fstat(self.fd).st_size

    def write(self, data: bytes) -> None:
        if self.size and self.size + len(data) > self.limit:
            self._rotate()
        with contextlib.suppress(OSError):  # a full disk must not stop the copying
            os.write(self.fd, data)
            self.size += len(data)

    def _rotate(self) -> None:
        with contextlib.suppress(OSError):
            os.replace(self.path, self.path + ".1")
            fd = os.open(self.path, APPEND, 0o644)
            os.close(self.fd)
            self.fd, self.size = fd, 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Stream:
    """One of the agent's output pipes, copied line by line into a capped log."""

    def __init__(self, fd: int, log: CappedLog, mask: Masker) -> None:
        self.fd, self.log, self.mask = fd, log, mask
        self.pending = b""

    def feed(self, chunk: bytes) -> None:
        data = self.pending + chunk
        end = data.rfind(b"\n") + 1
        while len(data) - end > LONG_LINE:  # a line without end: write it in pieces
            cut = self.mask.safe_cut(data, end + LONG_LINE)
            self.log.write(self.mask(data[:cut]) + b"\n")
            data, end = data[cut:], 0
        if end:
            lines = data[: end - 1].split(b"\n")
            self.log.write(b"".join(self.mask(line) + b"\n" for line in lines))
        self.pending = data[end:]

    def finish(self) -> None:
        if self.pending:
            self.log.write(self.mask(self.pending) + b"\n")
            self.pending = b""


def read_header(fd: int) -> dict[str, Any] | None:
    """The header from ``fd``; None at end of file (the orchestrator died before sending it)."""
    size = b""
    while not size.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte or len(size) > 12:
            return None
        size += byte
    remaining, parts = int(size), []
    if remaining > HEADER_LIMIT:
        return None
    while remaining:
        part = os.read(fd, remaining)
        if not part:
            return None
        parts.append(part)
        remaining -= len(part)
    header: dict[str, Any] = json.loads(b"".join(parts))
    return header


def _acknowledge(message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        os.write(1, json.dumps(message).encode() + b"\n")
        os.close(1)


def _start_agent(header: dict[str, Any]) -> subprocess.Popen[bytes] | dict[str, Any]:
    try:
        return subprocess.Popen(
            header["argv"],
            stdin=0,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
        )
    except OSError as exc:
        kind = type(exc).__name__
        return {"error": kind, "filename": str(exc.filename or ""), "strerror": exc.strerror}


def _pump(agent: subprocess.Popen[bytes], streams: list[Stream]) -> int:
    """Copy output until the agent exited and its pipes drained (or ``EXIT_GRACE`` passed:
    a grandchild may hold them open); the agent's status."""
    selector = selectors.DefaultSelector()
    for stream in streams:
        os.set_blocking(stream.fd, False)
        selector.register(stream.fd, selectors.EVENT_READ, stream)
    exited_at: float | None = None
    pidfd = _pidfd(agent.pid)
    if pidfd is not None:
        selector.register(pidfd, selectors.EVENT_READ, None)
    while selector.get_map():
        if exited_at is None and agent.poll() is not None:
            exited_at = time.monotonic()
            if pidfd is not None:
                selector.unregister(pidfd)
                os.close(pidfd)
                pidfd = None
        wait: float | None
        if exited_at is not None:
            wait = EXIT_GRACE - (time.monotonic() - exited_at)
            if wait <= 0 or not any(k.data is not None for k in selector.get_map().values()):
                break
        else:
            wait = None if pidfd is not None else 0.2
        for key, _ in selector.select(wait):
            stream = key.data
            if stream is None:
                continue
            with contextlib.suppress(BlockingIOError, InterruptedError):
                chunk = os.read(stream.fd, READ_SIZE)
                if chunk:
                    stream.feed(chunk)
                else:
                    selector.unregister(stream.fd)
    for stream in streams:
        stream.finish()
    return agent.wait()


def _pidfd(pid: int) -> int | None:
    """A descriptor readable when ``pid`` exits (Linux 5.3+); None where there is none."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


def _ignore(signum: int, frame: object) -> None:
    """The agent got the same signal (one process group); stay to record how it ends."""


def main() -> int:
    header = read_header(0)  # until it is read, a signal simply ends this process
    if header is None:
        return 3  # the orchestrator died before releasing the agent: nothing ran
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _ignore)  # a handler, not SIG_IGN: the agent gets the default back
    record_path = header["record"]
    record: dict[str, Any] = {"supervisor": os.getpid(), "pgid": os.getpgid(0), "started": False}
    mask = Masker(header.get("secrets", ()), [tuple(r) for r in header.get("rules", ())])
    max_bytes = int(header.get("max_bytes", 0)) or (1 << 62)
    logs = [CappedLog(header["stdout"], max_bytes), CappedLog(header["stderr"], max_bytes)]
    agent = _start_agent(header)
    if isinstance(agent, dict):
        logs[0].write(mark_line(f"cannot start: {agent['strerror'] or agent['error']}"))
        write_record(record_path, {**record, "ended_at": time.time(), "error": agent})
        _acknowledge(agent)
        return 127
    os.close(0)  # the agent has its own copy: its end of file is the orchestrator's close
    record.update(started=True, pid=agent.pid, started_at=time.time())
    write_record(record_path, record)
    logs[0].write(mark_line(f"start: {header['argv'][0]} pid {agent.pid} group {record['pgid']}"))
    _acknowledge({"pid": agent.pid})
    pipes = (agent.stdout, agent.stderr)
    streams = [Stream(p.fileno(), log, mask) for p, log in zip(pipes, logs, strict=True) if p]
    status = _pump(agent, streams)
    write_record(record_path, {**record, "exit": status, "ended_at": time.time()})
    logs[0].write(mark_line(f"exit: status {status}"))
    for log in logs:
        log.close()
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
