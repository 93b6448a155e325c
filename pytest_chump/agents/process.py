"""The one process runner every local spawner shares: start an agent, feed it, watch it, stop it.

One place gives every backend the same guarantees: argv (never a shell), its own process group
(signals reach grandchildren), stdin fed without deadlock, one log, and no leaked threads or fds.

Every agent runs under a :mod:`~pytest_chump.core.supervisor` process that leads its process
group. The caller's ``on_started`` records the supervisor's pid durably *before* the agent is
released (see that module), the supervisor keeps the agent's identity and exit status in a
record file, and it writes the agent's stdout and stderr into ``<slug>.log`` and
``<slug>.stderr.log`` with secrets masked and each file capped. No pipe leads back to this
process once the agent runs: an agent outlives the orchestrator that started it (a crash, or
``dispatch`` without ``--watch``), reader threads here follow the files, and a later
orchestrator adopts the agent by pid and reads the same files and record
(:mod:`~pytest_chump.agents.adopted_handle`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from pytest_chump.agents.logfiles import (
    APPEND,
    MARK,
    append_mark,
    follow,
    open_at_end,
    read_record,
    stderr_log,
)
from pytest_chump.core import supervisor
from pytest_chump.core.crashpoints import crash_point
from pytest_chump.core.errors import BinaryMissing, ChumpError
from pytest_chump.core.redact import bounded, known_secrets, redaction_rules
from pytest_chump.core.supervisor import encode_frame, encode_header
from pytest_chump.state.liveness import group_members, proc_start_ticks

SUPERVISOR = Path(supervisor.__file__)
ACK_TIMEOUT = 30.0  # seconds the supervisor may take to start the agent and say so
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
        log_path: Path,
        record_path: Path,
        notify: Callable[[], None] | None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.pid: int | None = proc.pid  # the supervisor's: it leads the agent's process group
        self.log_path: Path | None = log_path
        self.record_path = record_path
        self.facts: dict[str, object] = {}
        self._proc, self._notify = proc, notify
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
        self._ticks = proc_start_ticks(proc.pid)  # tells the group apart from a later one
        self._tails: list[threading.Thread] = []
        self._waiter: threading.Thread | None = None

    def poll(self) -> int | None:
        return self._status if self._done.is_set() else None

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the process exited and its output drained (or ``timeout``); the status."""
        self._done.wait(timeout)
        return self.poll()

    def terminate(self) -> None:
        """SIGTERM to the supervisor, which passes it on to the agent's group once (a signal
        to the whole group would reach the agent twice); after it, to what is left."""
        if self.pid is not None and not self._released and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGTERM)
            return
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
        _join(*self._tails)
        _join(self._waiter)
        self._released = True

    def _signal(self, sig: signal.Signals) -> None:
        """Signal the agent's process group; once the supervisor was reaped, only while the
        group still has members (stragglers), never a later group that reuses its id."""
        if self.pid is None or self._released:
            return
        if self._proc.returncode is not None and not group_members(self.pid, self._ticks):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def _launch(
        self,
        readers: tuple[io.FileIO, io.FileIO],
        on_line: Callable[[str], None] | None,
        ring_stdout: bool,
    ) -> None:
        out, err = readers
        self._tails = [
            _thread(self._tail, out, self.log_path, on_line, ring_stdout, True),
            _thread(self._tail, err, stderr_log(self.log_path or Path()), None, True, False),
        ]
        self._waiter = _thread(self._wait_exit)

    def _tail(
        self,
        reader: io.FileIO,
        path: Path,
        on_line: Callable[[str], None] | None,
        notable: bool,
        skip_marks: bool,
    ) -> None:
        """Follow ``path`` until the agent exited and the file is drained (see ``follow``)."""
        emit = lambda raw: self._line(raw, on_line, notable, skip_marks)  # noqa: E731
        follow(reader, path, self._exited, emit)

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
            if self.log_path is not None:
                append_mark(self.log_path, f"stdout callback failed: {type(exc).__name__}: {exc}")

    def _ping(self) -> None:
        if self._notify is not None:
            with contextlib.suppress(Exception):
                self._notify()

    def _wait_exit(self) -> None:
        status = self._proc.wait()  # the supervisor's: it exits once the agent did
        self._exited.set()
        _join(*self._tails)  # drained: tail and facts complete
        recorded = read_record(self.record_path).get("exit")
        self._status = recorded if isinstance(recorded, int) else status
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
    record_path: Path | None = None,
    on_started: Callable[[int], None] | None = None,
    log_max_bytes: int = 0,
    secrets: Sequence[str] = (),
) -> ProcessHandle:
    """Start ``argv`` under a supervisor in its own session with exactly ``env``; raise
    ChumpError if it cannot run.

    ``on_started(pid)`` is called with the supervisor's pid (the process group) before the
    agent is released: if this process dies before the call returns, no agent ever runs.
    ``record_path`` (default: next to the log) receives the agent's identity and exit status;
    ``log_max_bytes`` caps each log file on disk (0: no cap); ``secrets`` are masked in the
    logs with the secret values of ``env`` and of this process's environment.

    ``ring_stdout``: also keep notable stdout lines in the WARN/ERROR ring — for agents that
    print their errors as plain text on stdout (aider, most commands), not as JSON events.
    """
    if not argv:
        raise ChumpError("cannot start an agent: empty command")
    record_path = record_path or log_path.with_suffix(".agent.json")
    for path in (log_path, record_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    masked_secrets = known_secrets(secrets, env=env)
    header = {
        "argv": list(argv),
        "stdout": str(log_path),
        "stderr": str(stderr_log(log_path)),
        "record": str(record_path),
        "max_bytes": log_max_bytes,
        "secrets": masked_secrets,
        "rules": redaction_rules(),
    }
    with contextlib.ExitStack() as on_error:
        readers = []
        for path in (log_path, stderr_log(log_path)):
            os.close(os.open(path, APPEND, 0o644))  # exists, so it can be followed from its end
            readers.append(open_at_end(path))
            on_error.callback(readers[-1].close)
        with contextlib.suppress(FileNotFoundError):
            record_path.unlink()  # a record left by an earlier start is not this agent's
        proc = _popen_supervisor(cwd, env, stderr_log(log_path))
        crash_point("spawn.supervisor-started")  # not yet recorded: it must not start anything
        on_error.callback(_abandon, proc)
        if on_started is not None:
            on_started(proc.pid)
        _release(proc, header, stdin_text, argv[0])
        on_error.pop_all()
    crash_point("spawn.released")
    handle = ProcessHandle(proc, log_path, record_path, notify, masked_secrets)
    handle._launch((readers[0], readers[1]), on_stdout_line, ring_stdout)
    return handle


def _abandon(proc: subprocess.Popen[bytes]) -> None:
    """Stop a supervisor whose agent will not be watched, and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            _close_quietly(stream)


def _release(
    proc: subprocess.Popen[bytes], header: dict[str, Any], prompt: str | None, command: str
) -> None:
    """Send the header and the prompt (the agent may start now: the supervisor feeds it the
    whole prompt, whatever happens to this process) and wait for it to say it started."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    body = (prompt or "").encode("utf-8")
    try:
        proc.stdin.write(encode_header({**header, "stdin": prompt is not None}))
        proc.stdin.write(encode_frame(body))
        proc.stdin.close()
    except OSError:
        _close_quietly(proc.stdin)
        raise ChumpError(f"{command}: the agent's supervisor exited before starting it") from None
    answer = _read_answer(proc.stdout)
    _close_quietly(proc.stdout)
    if "pid" in answer:
        return
    if answer.get("error") == "FileNotFoundError":
        raise BinaryMissing(f"{command}: command not found")
    if answer.get("error") == "PermissionError":
        raise BinaryMissing(f"{command}: not executable")
    detail = answer.get("strerror") or answer.get("error") or "no answer from its supervisor"
    raise ChumpError(f"{command}: cannot run: {detail}")


def _read_answer(stream: IO[bytes]) -> dict[str, Any]:
    """The supervisor's one JSON line (``{}`` when it died or did not answer in time)."""
    deadline, data = time.monotonic() + ACK_TIMEOUT, b""
    fd = stream.fileno()
    while not data.endswith(b"\n") and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            break
        data += chunk
    try:
        answer = json.loads(data or b"{}")
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _popen_supervisor(cwd: Path, env: Mapping[str, str], stderr: Path) -> subprocess.Popen[bytes]:
    """The supervisor process, in its own session and cwd, with the agent's environment."""
    argv = [sys.executable or "python3", "-I", "-S", str(SUPERVISOR)]
    err_fd = os.open(stderr, APPEND, 0o644)  # its own complaints, should it have any
    try:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err_fd,
            close_fds=True,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if exc.filename is not None and str(exc.filename) == str(cwd):
            raise ChumpError(f"{cwd}: working directory does not exist") from None
        raise ChumpError(f"{argv[0]}: cannot start the agent's supervisor") from None
    except OSError as exc:
        raise ChumpError(f"cannot start the agent's supervisor: {exc.strerror or exc}") from None
    finally:
        os.close(err_fd)
