"""The one process runner every local spawner shares: start an agent, feed it, watch it, stop it.

One place gives every backend the same guarantees: argv (never a shell), its own process group
(signals reach grandchildren), stdin fed without deadlock, one log, and no leaked threads or fds.

The agent's stdout goes straight into its log file and its stderr into a sibling
``<stem>.stderr.log`` (see :mod:`~pytest_chump.agents.logfiles`), not into pipes: an agent must
outlive the orchestrator that started it (a crash, or ``dispatch`` without ``--watch``), and a
pipe whose reader died kills the writer with SIGPIPE/EPIPE. Reader threads follow the files
instead, so a later orchestrator can adopt the agent by pid and read the same files
(:mod:`~pytest_chump.agents.adopted_handle`).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from pytest_chump.agents.logfiles import (
    APPEND,
    MARK,
    RunnerLog,
    follow,
    open_at_end,
    stderr_log,
)
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.redact import bounded, secret_values

RING_SIZE = 64
OUTPUT_PING_INTERVAL = 0.5  # output wakes the loop at most this often (an exit always does)
JOIN_TIMEOUT = 5.0
# lines containing WARN, ERROR, FAIL or PANIC, in any case and inside words (RateLimitError)
NOTABLE = re.compile(r"warn|error|fail|panic", re.IGNORECASE)


class ProcessHandle:
    """A running local agent (a :class:`~pytest_chump.core.protocols.SpawnHandle`).

    The spawner's stream parser fills ``facts``; ``report()`` returns a copy of it.
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        log: RunnerLog,
        notify: Callable[[], None] | None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.pid: int | None = proc.pid
        self.log_path: Path | None = log.path
        self.facts: dict[str, object] = {}
        self._proc, self._log, self._notify = proc, log, notify
        self._ring: deque[str] = deque(maxlen=RING_SIZE)
        self._secrets = tuple(secrets)  # the agent's own (its env may hold more than ours)
        self._ring_lock = threading.Lock()
        self._activity = time.monotonic()
        self._pinged = float("-inf")  # when output last woke the loop
        self._status: int | None = None
        self._exited = threading.Event()  # the agent exited: tailers drain their file and stop
        self._done = threading.Event()
        self._closed = False
        self._released = False  # after close() the group id may be reused: never signal it
        self._close_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._tails: list[tuple[io.FileIO, threading.Thread]] = []
        self._waiter: threading.Thread | None = None

    def poll(self) -> int | None:
        return self._status if self._done.is_set() else None

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the process exited and its output drained (or ``timeout``); the status."""
        self._done.wait(timeout)
        return self.poll()

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def stderr_tail(self) -> list[str]:
        with self._ring_lock:
            return list(self._ring)

    def last_activity(self) -> float:
        return self._activity

    def report(self) -> dict[str, object]:
        return dict(self.facts)

    def close(self) -> None:
        """Join threads and close stdin, the tailed files and the log; kills a running agent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self._proc.returncode is None:
            self.kill()
        _join(self._waiter)
        self._exited.set()  # stop tailing even if the waiter is stuck
        _join(self._writer, *(thread for _, thread in self._tails))
        if self._proc.stdin is not None and (self._writer is None or not self._writer.is_alive()):
            _close_quietly(self._proc.stdin)
        for reader, thread in self._tails:
            if not thread.is_alive():
                _close_quietly(reader)
        _join(self._waiter)
        self._log.close()
        self._released = True

    def _signal(self, sig: signal.Signals) -> None:
        if self.pid is not None and not self._released:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def _launch(
        self,
        stdin_text: str | None,
        readers: tuple[io.FileIO, io.FileIO],
        on_line: Callable[[str], None] | None,
        ring_stdout: bool,
    ) -> None:
        proc = self._proc
        if proc.stdin is None:
            raise RuntimeError("agent started without a stdin pipe")
        if stdin_text is None:
            _close_quietly(proc.stdin)
        else:
            self._writer = _thread(_feed, proc.stdin, stdin_text)
        out, err = readers
        self._tails = [
            (out, _thread(self._tail, out, on_line, ring_stdout, True)),
            (err, _thread(self._tail, err, None, True, False)),
        ]
        self._waiter = _thread(self._wait_exit)

    def _tail(
        self,
        reader: io.FileIO,
        on_line: Callable[[str], None] | None,
        notable: bool,
        skip_marks: bool,
    ) -> None:
        """Follow ``reader`` until the agent exited and the file is drained (see ``follow``)."""
        follow(reader, self._exited, lambda raw: self._line(raw, on_line, notable, skip_marks))

    def _line(
        self, raw: bytes, on_line: Callable[[str], None] | None, notable: bool, skip_marks: bool
    ) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if skip_marks and line.startswith(MARK):
            return
        self._activity = time.monotonic()
        if notable and NOTABLE.search(line):
            kept = bounded(line.strip(), secrets=self._secrets)  # the log keeps all of it
            with self._ring_lock:
                self._ring.append(kept)
        if on_line is not None:
            self._call(on_line, line)
        if self._activity - self._pinged >= OUTPUT_PING_INTERVAL:  # a chatty agent: rarely
            self._pinged = self._activity
            self._ping()

    def _call(self, on_line: Callable[[str], None], line: str) -> None:
        try:
            on_line(line)
        except Exception as exc:  # a parser bug must not stop the reader
            self._log.mark(f"stdout callback failed: {type(exc).__name__}: {exc}")

    def _ping(self) -> None:
        if self._notify is not None:
            with contextlib.suppress(Exception):
                self._notify()

    def _wait_exit(self) -> None:
        status = self._proc.wait()
        self._exited.set()
        _join(*(tail for _, tail in self._tails))  # drained: tail and facts complete
        self._log.mark(f"exit: status {status}")
        self._status = status
        self._done.set()
        self._ping()


def _thread(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name="chump-agent-io", daemon=True)
    thread.start()
    return thread


def _join(*threads: threading.Thread | None) -> None:
    """Join ``threads`` within one shared deadline of ``JOIN_TIMEOUT`` seconds."""
    deadline = time.monotonic() + JOIN_TIMEOUT
    for thread in threads:
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def _feed(stream: IO[bytes], text: str) -> None:
    """Write the prompt and close stdin; an agent that exits without reading it is fine."""
    with contextlib.suppress(OSError, ValueError):
        stream.write(text.encode("utf-8"))
    _close_quietly(stream)


def _close_quietly(stream: IO[bytes] | io.FileIO) -> None:
    with contextlib.suppress(OSError, ValueError):
        stream.close()


def start(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin_text: str | None,
    log_path: Path,
    on_stdout_line: Callable[[str], None] | None = None,
    notify: Callable[[], None] | None = None,
    ring_stdout: bool = False,
) -> ProcessHandle:
    """Start ``argv`` in its own session with exactly ``env``; raise ChumpError if it cannot run.

    stdout is appended to ``log_path`` and stderr to :func:`stderr_log` through descriptors the
    agent owns, so it survives this process; threads here tail both files.

    ``ring_stdout``: also keep notable stdout lines in the WARN/ERROR ring — for agents that
    print their errors as plain text on stdout (aider, most commands), not as JSON events.
    """
    if not argv:
        raise ChumpError("cannot start an agent: empty command")
    log = RunnerLog(log_path)
    with contextlib.ExitStack() as on_error, contextlib.ExitStack() as child_fds:
        on_error.callback(log.close)  # the log and readers must not leak, whatever went wrong
        err_fd = os.open(stderr_log(log_path), APPEND, 0o644)
        child_fds.callback(os.close, err_fd)  # the agent has its copy once Popen returned
        out_reader = open_at_end(log_path)
        on_error.callback(out_reader.close)
        err_reader = open_at_end(stderr_log(log_path))
        on_error.callback(err_reader.close)
        try:
            proc = _popen(argv, cwd, env, log.fd, err_fd)
        except BaseException as exc:
            log.mark(f"cannot start: {exc}")
            raise
        on_error.pop_all()
    log.mark(f"start: {argv[0]} pid {proc.pid}")
    secrets = sorted({*secret_values(env), *secret_values()}, key=len, reverse=True)
    handle = ProcessHandle(proc, log, notify, secrets)
    handle._launch(stdin_text, (out_reader, err_reader), on_stdout_line, ring_stdout)
    return handle


def _popen(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], stdout: int, stderr: int
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
            close_fds=True,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if exc.filename is not None and str(exc.filename) == str(cwd):
            raise ChumpError(f"{cwd}: working directory does not exist") from None
        raise ChumpError(f"{argv[0]}: command not found") from None
    except PermissionError:
        raise ChumpError(f"{argv[0]}: not executable") from None
    except OSError as exc:
        raise ChumpError(f"{argv[0]}: cannot run: {exc.strerror or exc}") from None
