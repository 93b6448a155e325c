"""The handle of an agent running as a Ray job: ``SpawnHandle`` on top of Ray's Jobs API.

Status, stop and logs are the Jobs API's (``get_job_info``, ``stop_job``, ``tail_job_logs``);
nothing here assumes the agent runs on this machine. A thread follows the job's log into the
dispatch's local log files, exactly where a local agent's output goes (stdout lines into
``<slug>.log``, the ``[stderr] ``-prefixed ones into ``<slug>.stderr.log``, masked again with
the secrets this side knows), so ``chump logs``, the dashboard, stall detection and the cause
of a failure work the same. How many log lines were copied is kept in the dispatch's record
file, so an orchestrator that re-attaches after a crash copies only what it has not seen.

How a job ends, as ``poll`` tells it:

- ``SUCCEEDED`` → 0; ``FAILED`` with the entrypoint's exit status → that status (the job
  exits with the agent's);
- ``STOPPED`` after :meth:`terminate` or :meth:`kill` → 143;
- ``FAILED`` without an exit status (its node or supervisor died), ``STOPPED`` by anyone
  else, a job the cluster no longer knows, or a cluster unreachable for ``lost_after``
  seconds → 1, and :meth:`report` says ``ended_by: worker-lost`` with the reason: the loop
  ends the dispatch ``killed`` with that cause.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_chump.agents.logfiles import read_record, stderr_log
from pytest_chump.agents.process import NOTABLE
from pytest_chump.agents.ray_job import RESULT_EVENT, STDERR_PREFIX
from pytest_chump.core.redact import redaction_rules
from pytest_chump.core.supervisor import MARK, CappedLog, Masker, Stream, write_record

WORKER_LOST = "worker-lost"
STOPPED_STATUS = 143  # 128 + SIGTERM: how a job this side stopped ends
TAIL_LINES = 64
STATUS_EVERY = 0.5  # seconds between two status requests, on the handle's own thread
LOG_GRACE = 10.0  # seconds a finished job's last log lines may take to arrive
RECORD_EVERY = 0.0  # seconds between two writes of the copied-lines count (each chunk)
CLOSE_GRACE = 20.0  # seconds a closed handle goes on copying the end of its job's log
CHECK_EVERY = 0.5  # seconds between two looks at that deadline while no output comes
RECONNECT_AFTER = 1.0  # seconds before a broken log stream is opened again
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})


class RayJobHandle:
    """A dispatch's Ray job, seen through the Jobs API client ``client``."""

    def __init__(
        self,
        client: Callable[[], Any],
        job_id: str,
        log_path: Path,
        *,
        record_path: Path | None = None,
        parser: Callable[[str], None] | None = None,
        facts: dict[str, object] | None = None,
        notify: Callable[[], None] | None = None,
        secrets: tuple[str, ...] = (),
        log_max_bytes: int = 0,
        ring_stdout: bool = False,
        lost_after: float = 120.0,
        skip_lines: int = 0,
    ) -> None:
        self.pid: int | None = None
        self.log_path: Path | None = log_path
        self.where = f"ray job {job_id}"  # what the progress lines show for the worktree
        self._client, self.job_id, self.record_path = client, job_id, record_path
        self.parser, self.notify, self.ring_stdout = parser, notify, ring_stdout
        self.facts: dict[str, object] = facts if facts is not None else {}
        self.lost_after = lost_after
        self.lines_seen = 0  # lines of the job's log read so far, the skipped ones included
        self._skip = skip_lines  # lines an earlier orchestrator copied already (re-attach)
        self._mask = Masker(secrets, redaction_rules())
        cap = log_max_bytes or (1 << 62)
        for folder in {log_path.parent, *([record_path.parent] if record_path else [])}:
            folder.mkdir(parents=True, exist_ok=True)
        self._logs = (CappedLog(str(log_path), cap), CappedLog(str(stderr_log(log_path)), cap))
        self._streams = (
            Stream(-1, self._logs[0], self._mask),
            Stream(-1, self._logs[1], self._mask),
        )
        self._ring: deque[str] = deque(maxlen=TAIL_LINES)
        self._activity = time.monotonic()
        self._result: dict[str, object] = {}
        self._lock = threading.Lock()
        self._status: str = "PENDING"
        self._exit: int | None = None
        self._lost = ""
        self._answered_at = time.monotonic()  # the cluster's last answer about the job
        self._terminal_at: float | None = None
        self._info: Any = None
        self._stop_requested = False
        self._recorded_at = 0.0
        self._record_lock = threading.Lock()
        self._streaming = True
        self._closing_at: float | None = None
        self._done = threading.Event()  # the status is final: the watcher stops asking
        self._thread = threading.Thread(target=self._follow, name=f"ray-log-{job_id}", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name=f"ray-job-{job_id}", daemon=True)
        self._thread.start()
        self._watcher.start()

    # --- SpawnHandle ---------------------------------------------------------------------

    def poll(self) -> int | None:
        """The job's exit status once it ended and its log was copied, else None (see the
        module docstring). Never waits for the cluster: the status is asked on a thread of
        the handle's own (a head that accepts connections and never answers must not stop
        the loop), and a cluster silent for ``lost_after`` seconds counts as lost."""
        if self._exit is not None:
            return self._exit
        now = time.monotonic()
        if self._terminal_at is None and now - self._answered_at >= self.lost_after:
            self._lose(f"the cluster has not answered for {self.lost_after:g}s", now)
        if self._terminal_at is None:
            return None
        if self._streaming and not self._lost and now - self._terminal_at < LOG_GRACE:
            return None  # the last lines (and the job's result line) are still on their way
        self._exit = self._verdict()
        self._done.set()
        self._save_progress(force=True)
        return self._exit

    def terminate(self) -> None:
        """``ray job stop``: SIGTERM to the job's entrypoint (it passes it on to the agent
        once, then saves and pushes its work), SIGKILL after the job's stop wait. Sent from
        a thread: a silent cluster must not stop the loop."""
        self._stop_requested = True
        self._stop()

    def _stop(self) -> None:
        def request() -> None:
            with contextlib.suppress(Exception):  # a cluster gone: poll finds out and says so
                self._client().stop_job(self.job_id)

        threading.Thread(target=request, name=f"ray-stop-{self.job_id}", daemon=True).start()

    def kill(self) -> None:
        """The Jobs API has no harder stop: the same request (Ray escalates to SIGKILL)."""
        self.terminate()

    def stderr_tail(self) -> list[str]:
        with self._lock:
            return list(self._ring)

    def last_activity(self) -> float:
        return self._activity

    def report(self) -> Mapping[str, object]:
        """The inner agent's facts, the job id, and ``ended_by``/``ended_why`` when the job
        ended for a reason outside the agent (a worker lost, set-up failed on the node)."""
        facts: dict[str, object] = {**self.facts, "ray_job": self.job_id}
        if self._lost:
            facts.update(ended_by=WORKER_LOST, ended_why=self._lost)
        elif isinstance(error := self._result.get("error"), str) and error:
            cause = "setup-failed" if error.startswith("setup failed") else "spawn-failed"
            if not error.startswith("push failed"):
                facts.update(ended_by=cause, ended_why=error)
        return facts

    def close(self) -> None:
        """Let the log copy finish: it goes on until the job's log ends, at most
        ``CLOSE_GRACE`` seconds more (Ray delivers a job's last lines after it ended: the
        agent's work may have shipped before its output arrived). The job is left as it is."""
        if self._closing_at is None:
            self._closing_at = time.monotonic()
            _closing.add(self)

    # --- status --------------------------------------------------------------------------

    def _watch(self) -> None:
        """Ask the cluster for the job's status every ``STATUS_EVERY`` seconds until it is
        final (each request may block: this thread is the only one that waits for it)."""
        while not self._done.is_set() and self._terminal_at is None:
            try:
                info = self._client().get_job_info(self.job_id)
            except Exception as exc:
                if _not_found(exc):
                    self._lose("the cluster does not know the job (restarted, or never ran it)")
                    break
            else:
                self._answered_at = time.monotonic()
                status = str(getattr(info.status, "value", info.status))
                self._status = status
                if status in TERMINAL:
                    self._info = info
                    self._terminal_at = time.monotonic()
                    if self.notify is not None:
                        self.notify()
                    break
            self._done.wait(STATUS_EVERY)

    def _lose(self, why: str, now: float | None = None) -> None:
        """The job counts as lost: said once, and a stop is still sent (the job may be
        running where this side cannot see it: it must not push beside a retry)."""
        if self._terminal_at is not None:
            return
        self._lost = why
        self._terminal_at = now if now is not None else time.monotonic()
        self._stop()

    def _verdict(self) -> int:
        if self._lost:
            return 1
        info = self._info
        status, code = self._status, getattr(info, "driver_exit_code", None)
        if status == "SUCCEEDED":
            return 0
        if status == "STOPPED":
            if self._stop_requested:
                return STOPPED_STATUS
            self._lost = "the job was stopped by the cluster or someone else"
            return 1
        recorded = self._result.get("exit")
        if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded:
            return recorded
        if isinstance(code, int) and code > 0:
            return code
        self._lost = _line(getattr(info, "message", "") or "the job failed without an exit status")
        return 1

    # --- log copy ------------------------------------------------------------------------

    def _follow(self) -> None:
        """Copy the job's log as it grows until it ends (or ``CLOSE_GRACE`` after close)."""
        try:  # a connection lost ends the copy: what was copied stays, the status decides
            with contextlib.suppress(Exception):
                asyncio.run(self._copy_all())
        finally:
            self._streaming = False
            for stream in self._streams:
                stream.finish()
            for log in self._logs:
                log.close()
            self._save_progress(force=True)
            _closing.discard(self)
            if self.notify is not None and self._closing_at is None:
                self.notify()

    async def _copy_all(self) -> None:
        """Follow the log; a stream that broke (the job's log not there yet, a connection
        lost) is opened again, skipping the lines already copied."""
        while not self._past_grace():
            with contextlib.suppress(Exception):
                if await self._copy():
                    return
            self._skip, self.lines_seen = self.lines_seen, 0  # it starts from the top again
            await asyncio.sleep(RECONNECT_AFTER)

    async def _copy(self) -> bool:
        """One stream of the job's log; True when it ended (the job is over)."""
        lines = self._client().tail_job_logs(self.job_id).__aiter__()
        pending, waiting = "", None
        try:
            while not self._past_grace():
                if waiting is None:
                    waiting = asyncio.ensure_future(lines.__anext__())
                done, _ = await asyncio.wait({waiting}, timeout=CHECK_EVERY)
                if not done:
                    continue  # nothing new: look at the close deadline again
                try:
                    chunk = waiting.result()
                except StopAsyncIteration:
                    waiting = None
                    if pending:
                        self._take([pending])
                    return True
                waiting = None
                parts = (pending + chunk).split("\n")
                pending = parts.pop()
                self._take(parts)
            return False
        finally:
            if waiting is not None:
                waiting.cancel()
                with contextlib.suppress(BaseException):
                    await waiting
            with contextlib.suppress(Exception):
                await lines.aclose()  # closes the websocket and its session

    def _past_grace(self) -> bool:
        return self._closing_at is not None and time.monotonic() - self._closing_at > CLOSE_GRACE

    def _take(self, lines: list[str]) -> None:
        for line in lines:
            self.lines_seen += 1
            if self._skip:
                self._skip -= 1
                continue
            self._line(line)
        self._activity = time.monotonic()
        self._save_progress()
        if self.notify is not None:
            self.notify()

    def _line(self, line: str) -> None:
        raw = line.encode("utf-8", errors="replace")
        if raw.startswith(STDERR_PREFIX):
            text = raw[len(STDERR_PREFIX) :]
            self._streams[1].feed(text + b"\n")
            masked = self._mask(text).decode("utf-8", errors="replace").strip()
            if NOTABLE.search(masked):
                with self._lock:
                    self._ring.append(masked)
            return
        self._streams[0].feed(raw + b"\n")
        if line.startswith(MARK):
            self._runner_line(line)
            return
        if self.parser is not None:
            with contextlib.suppress(Exception):  # an agent's odd output never stops the copy
                self.parser(line)
        if self.ring_stdout:
            masked = self._mask(raw).decode("utf-8", errors="replace").strip()
            if NOTABLE.search(masked):
                with self._lock:
                    self._ring.append(masked)

    def _runner_line(self, line: str) -> None:
        """The job's own lines: its result, and its errors (kept for the failure's cause)."""
        body = line.rstrip().removesuffix("===").rstrip()
        event = body.split(" ", 3)[-1] if body.count(" ") >= 3 else ""
        if event.startswith(f"{RESULT_EVENT}: "):
            with contextlib.suppress(ValueError):
                result = json.loads(event.removeprefix(f"{RESULT_EVENT}: "))
                if isinstance(result, dict):
                    self._result = result
        elif event.startswith(("error: ", "cannot start: ")):
            with self._lock:
                self._ring.append(self._mask(event.encode()).decode("utf-8", errors="replace"))

    def _save_progress(self, force: bool = False) -> None:
        """The copied-lines count in the record file (at most every ``RECORD_EVERY`` s)."""
        now = time.monotonic()
        if self.record_path is None or (not force and now - self._recorded_at < RECORD_EVERY):
            return
        with self._record_lock:  # the copy thread and the loop both write it
            self._recorded_at = now
            record = {**read_record(self.record_path), "ray_job": self.job_id}
            record["lines"] = self.lines_seen
            if self._exit is not None:
                record["exit"] = self._exit
            write_record(str(self.record_path), record)


_closing: set[RayJobHandle] = set()  # closed handles still copying the end of their log


@atexit.register
def _finish_copies() -> None:
    """At exit, give closed handles their remaining grace to copy the end of their logs
    (their threads are daemons: a handle never closed must not keep the process alive)."""
    for handle in list(_closing):
        left = CLOSE_GRACE - (time.monotonic() - (handle._closing_at or 0.0))
        handle._thread.join(timeout=max(left, 0.0))


def _not_found(exc: Exception) -> bool:
    """Whether the Jobs API said it has no such job (Ray: ``Job ... does not exist``)."""
    return "does not exist" in str(exc).lower()


def _line(value: object) -> str:
    lines = [ln.strip() for ln in str(value).splitlines() if ln.strip()]
    return lines[0][:300] if lines else ""
