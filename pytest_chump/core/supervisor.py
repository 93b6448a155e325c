"""The supervisor: a tiny process between the orchestrator and an agent, one per dispatch.

It makes an agent's identity durable before the agent can do anything, and its end knowable
by whichever orchestrator looks later:

1. The orchestrator starts it (its own session: it leads the process group every signal goes
   to), records its pid in the store, and only then sends two frames on stdin: the *header*
   (a JSON object with the agent's argv, log paths, identity record, log cap and the secret
   values to mask) and the *prompt*. A supervisor that reads end-of-file first (the
   orchestrator died before releasing the agent), or waits past ``HEADER_TIMEOUT``, exits
   without starting anything: no agent ever runs untracked.
2. It starts the agent, feeds it the whole prompt itself (so an orchestrator that exits at
   once, or dies, never cuts it short), writes the identity record (its pid = the group, the
   agent's pid) and acknowledges on its stdout, then closes it: the orchestrator may die at
   any moment afterwards.
3. It copies the agent's stdout and stderr into ``<slug>.log`` and ``<slug>.stderr.log`` line
   by line, with every secret value (also JSON-escaped), token-shaped string and private-key
   block masked *before* the line reaches the disk, so the log is safe whichever process
   reads it later; each file stays within ``max_bytes`` on disk (the live file rotates into
   ``.1`` at half of it, and a single write never exceeds that half: the tail is kept).
4. When the agent exits it writes the exit status into the record, then exits itself with
   the agent's status (128 + N for signal N).

SIGTERM and SIGHUP sent to the supervisor are passed on to its group, once to each member (a
plain ``kill <pid>`` stops the agent, as the orchestrator's own SIGTERM does); the supervisor
outlives them to record how the agent ended. SIGKILL goes to the group directly. Run as
``python -I -S supervisor.py``: this file imports nothing but the standard library, so it
starts in milliseconds and no module in the agent's working directory can shadow one of it.
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
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

MARK = "=== chump "  # the runner's own lines in the log start with this
APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
LONG_LINE = 8 << 20  # bytes without a newline written out as one piece (bounds memory)
READ_SIZE = 65536
MASK = b"[REDACTED]"
FRAME_LIMIT = 64 << 20  # a header or prompt past this is not ours
HEADER_TIMEOUT = 600.0  # a supervisor never released in this long gives up
EXIT_GRACE = 2.0  # seconds to drain output still in the pipes after the agent exited
TOKEN_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
PEM_BEGIN = re.compile(rb"-----BEGIN[A-Z ]*PRIVATE KEY(?: BLOCK)?-----")
PEM_END = re.compile(rb"-----END[A-Z ]*PRIVATE KEY(?: BLOCK)?-----")


def mark_line(event: str) -> bytes:
    """One runner line for the log, timestamped, newline-terminated."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return f"{MARK}{stamp} {event} ===\n".encode("utf-8", errors="replace")


def encode_frame(body: bytes) -> bytes:
    """The framing of the supervisor's stdin: a decimal length line, then the bytes."""
    return str(len(body)).encode() + b"\n" + body


def encode_header(header: dict[str, Any]) -> bytes:
    return encode_frame(json.dumps(header).encode("utf-8"))


def write_record(path: str, record: dict[str, Any]) -> bool:
    """Replace the identity record atomically (readers see the old or the new one); False
    (and no temporary file left) when the disk refuses."""
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as stream:
            json.dump(record, stream)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return False
    return True


class Masker:
    """Masks secret values and token shapes in one line of bytes."""

    def __init__(self, secrets: Iterable[str], rules: Iterable[tuple[str, int, int]]) -> None:
        parts = {p for s in secrets for p in s.splitlines() if len(p.strip()) >= 6}
        escaped = {json.dumps(p)[1:-1] for p in parts}  # as it shows inside JSON output
        self.values = sorted((p.encode() for p in parts | escaped), key=len, reverse=True)
        self.rules = [(re.compile(p.encode(), flags & ~re.U), keep) for p, flags, keep in rules]

    def __call__(self, line: bytes) -> bytes:
        for value in self.values:
            if value in line:
                line = line.replace(value, MASK)
        for pattern, keep in self.rules:
            line = pattern.sub(_replacement(keep), line)
        return line

    def safe_cut(self, data: bytes, cut: int) -> int:
        """``cut`` moved off any secret value or token it would split: back to the last
        byte no token contains (within 1 KiB), then past any secret value spanning it."""
        for back in range(cut, max(cut - 1024, 1), -1):
            if data[back - 1] not in TOKEN_BYTES:
                cut = back
                break
        for value in self.values:
            start = data.find(value, max(0, cut - len(value) + 1), cut + len(value) - 1)
            if 0 <= start < cut < start + len(value):
                cut = start + len(value)
        return cut


def _replacement(keep: int) -> Callable[[re.Match[bytes]], bytes]:
    return lambda m: (m.group(keep) if keep else b"") + MASK


class CappedLog:
    """An append-only log file that rotates into ``<path>.1`` at half of ``max_bytes``:
    the two files together never hold more than ``max_bytes``."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self.path, self.limit = path, max(max_bytes // 2, 1)
        self.fd = os.open(path, APPEND, 0o644)
        self.size = os.fstat(self.fd).st_size

    def write(self, data: bytes) -> None:
        if len(data) > self.limit:  # keep the end of an oversize write, marked
            marker = b"[... cut to the log's cap ...]\n"
            data = marker + data[len(data) - self.limit + len(marker) :]
        if self.size and self.size + len(data) > self.limit:
            self._rotate()
        with contextlib.suppress(OSError):  # a full disk must not stop the copying
            os.write(self.fd, data)
            self.size += len(data)

    def _rotate(self) -> None:
        try:
            os.replace(self.path, self.path + ".1")
            fd = os.open(self.path, APPEND, 0o644)
        except OSError:  # cannot rotate (no inodes, a read-only folder): start over in place
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            self.size = 0
            return
        os.close(self.fd)
        self.fd, self.size = fd, 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Lines(Protocol):
    """Where a :class:`Stream` writes: a capped log file here, a Ray job's log elsewhere."""

    limit: int  # bytes a single write may take

    def write(self, data: bytes) -> None: ...


class Stream:
    """One of the agent's output pipes, copied line by line into a capped log."""

    def __init__(self, fd: int, log: Lines, mask: Masker) -> None:
        self.fd, self.log, self.mask = fd, log, mask
        self.pending = b""
        self.in_key = False  # inside a private-key block: every line is masked
        self.long = min(LONG_LINE, log.limit)

    def feed(self, chunk: bytes) -> None:
        data = self.pending + chunk
        end = data.rfind(b"\n") + 1
        if end:
            self._lines(data[:end])
            data = data[end:]
        while len(data) > self.long:  # a line without end: written in pieces
            cut = self.mask.safe_cut(data, self.long)
            self.log.write(self._masked(data[:cut]) + b"\n")
            data = data[cut:]
        self.pending = data

    def _lines(self, block: bytes) -> None:
        lines = block[:-1].split(b"\n")
        self.log.write(b"".join(self._masked(line) + b"\n" for line in lines))

    def _masked(self, line: bytes) -> bytes:
        if self.in_key:
            self.in_key = PEM_END.search(line) is None
            return MASK
        if PEM_BEGIN.search(line) and not PEM_END.search(line):
            self.in_key = True
            return MASK
        return self.mask(line)

    def finish(self) -> None:
        if self.pending:
            self.log.write(self._masked(self.pending) + b"\n")
            self.pending = b""


def read_frame(fd: int, deadline: float | None = None) -> bytes | None:
    """One frame from ``fd``; None at end of file, past ``deadline`` or on a bad frame."""
    size = b""
    while not size.endswith(b"\n"):
        byte = _read(fd, 1, deadline)
        if not byte or len(size) > 12 or not (byte.isdigit() or byte == b"\n"):
            return None
        size += byte
    remaining, parts = int(size), []
    if remaining > FRAME_LIMIT:
        return None
    while remaining:
        part = _read(fd, min(remaining, READ_SIZE), deadline)
        if not part:
            return None
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def read_header(fd: int, deadline: float | None = None) -> dict[str, Any] | None:
    frame = read_frame(fd, deadline)
    if frame is None:
        return None
    header = json.loads(frame)
    return header if isinstance(header, dict) else None


def _read(fd: int, size: int, deadline: float | None) -> bytes:
    if deadline is not None:
        left = deadline - time.monotonic()
        ready = selectors.DefaultSelector()
        ready.register(fd, selectors.EVENT_READ)
        events = ready.select(max(left, 0.0))
        ready.close()
        if not events:
            return b""
    return os.read(fd, size)


def _acknowledge(message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        os.write(1, json.dumps(message).encode() + b"\n")
        os.close(1)


def _start_agent(header: dict[str, Any], feed: bool) -> subprocess.Popen[bytes] | dict[str, Any]:
    try:
        return subprocess.Popen(
            header["argv"],
            stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
        )
    except OSError as exc:
        kind = type(exc).__name__
        return {"error": kind, "filename": str(exc.filename or ""), "strerror": exc.strerror}


def feed_prompt(agent: subprocess.Popen[bytes], prompt: bytes) -> None:
    """Write the whole prompt and close the agent's stdin; one that exits first is fine."""
    stream = agent.stdin
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        stream.write(prompt)
    with contextlib.suppress(OSError, ValueError):
        stream.close()


def pump(agent: subprocess.Popen[bytes], streams: list[Stream]) -> int:
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


def _pass_on(signum: int, frame: object = None) -> None:
    """A stop signal the supervisor got: on to its whole group (the agent and what it
    started), exactly once each; the supervisor itself ignores its own copy and stays to
    record the end. (The orchestrator sends SIGTERM to the supervisor alone; only SIGKILL
    goes to the group directly.)"""
    signal.signal(signum, signal.SIG_IGN)  # a signal generated while ignored is discarded
    try:
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(0), signum)
    finally:
        signal.signal(signum, _pass_on)


def main() -> int:
    deadline = time.monotonic() + HEADER_TIMEOUT
    header = read_header(0, deadline)  # until it is read, a signal simply ends this process
    prompt = read_frame(0, deadline) if header is not None else None
    if header is None or prompt is None:
        return 3  # the orchestrator died (or gave up) before releasing the agent: nothing ran
    _serve(header, prompt)
    return 0  # not reached: _serve exits


def _serve(header: dict[str, Any], prompt: bytes) -> None:
    received: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: received.append(s))  # passed on once the agent runs
    signal.signal(signal.SIGINT, lambda s, f: None)  # ^C reached the group: stay to record
    record_path = header["record"]
    record: dict[str, Any] = {"supervisor": os.getpid(), "pgid": os.getpgid(0), "started": False}
    mask = Masker(header.get("secrets", ()), [tuple(r) for r in header.get("rules", ())])
    max_bytes = int(header.get("max_bytes", 0)) or (1 << 62)
    logs = [CappedLog(header["stdout"], max_bytes), CappedLog(header["stderr"], max_bytes)]
    feed = bool(header.get("stdin", True))
    agent = _start_agent(header, feed)
    if isinstance(agent, dict):
        logs[0].write(mark_line(f"cannot start: {agent['strerror'] or agent['error']}"))
        write_record(record_path, {**record, "ended_at": time.time(), "error": agent})
        _acknowledge(agent)
        sys.exit(127)
    os.close(0)
    threading.Thread(target=feed_prompt, args=(agent, prompt), daemon=True).start()
    record.update(started=True, pid=agent.pid, started_at=time.time())
    write_record(record_path, record)
    logs[0].write(mark_line(f"start: {header['argv'][0]} pid {agent.pid} group {record['pgid']}"))
    _acknowledge({"pid": agent.pid})
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _pass_on)
    for early in received:
        _pass_on(early)
    pipes = (agent.stdout, agent.stderr)
    streams = [Stream(p.fileno(), log, mask) for p, log in zip(pipes, logs, strict=True) if p]
    status = pump(agent, streams)
    write_record(record_path, {**record, "exit": status, "ended_at": time.time()})
    logs[0].write(mark_line(f"exit: status {status}"))
    for log in logs:
        log.close()
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    sys.exit(main())
