"""The one process runner every local spawner shares: start an agent, feed it, watch it, stop it.

One place gives every backend the same guarantees: argv (never a shell), its own process group
(signals reach grandchildren), stdin fed without deadlock, one log, and no leaked threads or fds.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pytest_chump.errors import ChumpError
from pytest_chump.proc import clean_env

if TYPE_CHECKING:
    from pytest_chump.config import Settings

RING_SIZE = 64
JOIN_TIMEOUT = 5.0
DEPTH_VAR = "CHUMP_DISPATCH_DEPTH"
# lines containing WARN, ERROR, FAIL or PANIC, in any case and inside words (RateLimitError)
NOTABLE = re.compile(r"warn|error|fail|panic", re.IGNORECASE)


class _Log:
    """The append-only log of one process, shared by its reader threads under one lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8", errors="replace")
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock, contextlib.suppress(OSError):
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()

    def mark(self, event: str) -> None:
        self.write(f"=== {datetime.now(UTC).isoformat(timespec='seconds')} {event} ===")

    def close(self) -> None:
        with self._lock:
            self._file.close()


class ProcessHandle:
    """A running local agent (a :class:`~pytest_chump.contracts.SpawnHandle`).

    The spawner's stream parser fills ``facts``; ``report()`` returns a copy of it.
    """

    def __init__(self, proc: subprocess.Popen[bytes], log: _Log, notify: Callable[[], None] | None):
        self.pid: int | None = proc.pid
        self.log_path: Path | None = log.path
        self.facts: dict[str, object] = {}
        self._proc, self._log, self._notify = proc, log, notify
        self._ring: deque[str] = deque(maxlen=RING_SIZE)
        self._ring_lock = threading.Lock()
        self._activity = time.monotonic()
        self._status: int | None = None
        self._done = threading.Event()
        self._closed = False
        self._released = False  # after close() the group id may be reused: never signal it
        self._close_lock = threading.Lock()
        self._pipes: list[tuple[IO[bytes], threading.Thread | None]] = []
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
        """Join threads and close pipes and the log; kills the agent first if it still runs."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self._proc.returncode is None:
            self.kill()
        _join(self._waiter)
        if any(t is not None and t.is_alive() for _, t in self._pipes[1:]):
            self.kill()  # stragglers of the group still hold our output pipes
        _join(*(thread for _, thread in self._pipes))
        for stream, thread in self._pipes:
            if thread is None or not thread.is_alive():
                _close_quietly(stream)
        _join(self._waiter)
        self._log.close()
        self._released = True

    def _signal(self, sig: signal.Signals) -> None:
        if self.pid is not None and not self._released:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def _launch(
        self, stdin_text: str | None, on_line: Callable[[str], None] | None, ring_stdout: bool
    ) -> None:
        proc = self._proc
        if proc.stdin is None or proc.stdout is None or proc.stderr is None:
            raise RuntimeError("agent started without pipes")
        writer = None if stdin_text is None else _thread(_feed, proc.stdin, stdin_text)
        if writer is None:
            _close_quietly(proc.stdin)
        self._pipes = [
            (proc.stdin, writer),
            (proc.stdout, _thread(self._read, proc.stdout, "", on_line, ring_stdout)),
            (proc.stderr, _thread(self._read, proc.stderr, "[stderr] ", None, True)),
        ]
        self._waiter = _thread(self._wait_exit)

    def _read(
        self,
        stream: IO[bytes],
        prefix: str,
        on_line: Callable[[str], None] | None,
        notable: bool,
    ) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self._activity = time.monotonic()
                self._log.write(prefix + line)
                if notable and NOTABLE.search(line):
                    with self._ring_lock:
                        self._ring.append(line.strip())
                if on_line is not None:
                    self._call(on_line, line)
                self._ping()

    def _call(self, on_line: Callable[[str], None], line: str) -> None:
        try:
            on_line(line)
        except Exception as exc:  # a parser bug must not stop the reader
            self._log.write(f"[chump] stdout callback failed: {type(exc).__name__}: {exc}")

    def _ping(self) -> None:
        if self._notify is not None:
            with contextlib.suppress(Exception):
                self._notify()

    def _wait_exit(self) -> None:
        status = self._proc.wait()
        _join(*(reader for _, reader in self._pipes[1:]))  # drained: tail and facts complete
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


def _close_quietly(stream: IO[bytes]) -> None:
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

    ``ring_stdout``: also keep notable stdout lines in the WARN/ERROR ring — for agents that
    print their errors as plain text on stdout (aider, most commands), not as JSON events.
    """
    if not argv:
        raise ChumpError("cannot start an agent: empty command")
    log = _Log(log_path)
    try:
        proc = _popen(argv, cwd, env)
    except BaseException as exc:  # the log must not leak, whatever went wrong
        log.mark(f"cannot start: {exc}")
        log.close()
        raise
    log.mark(f"start: {argv[0]} pid {proc.pid}")
    handle = ProcessHandle(proc, log, notify)
    handle._launch(stdin_text, on_stdout_line, ring_stdout)
    return handle


def _popen(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
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


def check_depth(env: Mapping[str, str]) -> None:
    """Refuse to dispatch from inside a dispatched agent (``CHUMP_DISPATCH_DEPTH`` >= 1)."""
    value = env.get(DEPTH_VAR, "").strip()
    depth = int(value) if re.fullmatch(r"[+-]?\d+", value) else int(bool(value))
    if depth >= 1:
        raise ChumpError(
            f"refusing to dispatch from inside a dispatched agent ({DEPTH_VAR}={value})"
        )


def agent_env(
    base: Mapping[str, str], settings: Settings, gap_id: str, branch: str, worktree: Path
) -> dict[str, str]:
    """``base`` without hook git variables, plus the dispatch markers and the bot identity."""
    markers = {DEPTH_VAR: "1", "CHUMP_GAP_ID": gap_id, "CHUMP_BRANCH": branch}
    name, email = settings.bot_name, settings.bot_email
    identity = {"GIT_AUTHOR_NAME": name, "GIT_COMMITTER_NAME": name}
    identity |= {"GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_EMAIL": email}
    return clean_env(base, **markers, **identity, CHUMP_WORKTREE=str(worktree))
