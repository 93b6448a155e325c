"""The process runner with real subprocesses: stdin, env, log, stderr ring, signals, no fd leaks.

Nothing here sleeps to wait: tests block on process exit, pipe reads or events, with generous
timeouts so a slow machine only makes them slower, never flaky.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chump.agents import process as runner
from pytest_chump.core.config import Settings
from pytest_chump.core.errors import ChumpError
from pytest_chump.dispatch.agent_env import agent_env
from tests.agent_scripts import script

TIMEOUT = 20.0
Launch = Callable[..., runner.ProcessHandle]


def base_env(**extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath), **extra}


def py(name: str) -> list[str]:
    return [sys.executable, script(name)]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start a process with a log under tmp_path; every handle is closed after the test."""
    handles: list[runner.ProcessHandle] = []

    def go(argv: list[str], env: dict[str, str] | None = None, **kw: Any) -> runner.ProcessHandle:
        kw.setdefault("stdin_text", None)
        kw.setdefault("log_path", tmp_path / "logs" / "agent.log")
        handle = runner.start(argv, cwd=tmp_path, env=base_env() if env is None else env, **kw)
        handles.append(handle)
        return handle

    yield go
    for handle in handles:
        handle.close()


def finish(handle: runner.ProcessHandle) -> int | None:
    status = handle.wait(TIMEOUT)
    assert status is not None, "process did not finish in time"
    return status


# --- input and environment ------------------------------------------------------------


def test_prompt_arrives_on_stdin_exactly_even_when_large(launch: Launch, tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    prompt = "Fix GAP-1.\nünïcödé ✓\n" + "x" * 300_000 + "\nend\n"
    handle = launch(py("probe.py"), env=base_env(PROBE_OUT=str(out)), stdin_text=prompt)
    assert finish(handle) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["stdin"] == prompt


def test_stdin_is_closed_at_once_without_a_prompt(launch: Launch, tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    handle = launch(py("probe.py"), env=base_env(PROBE_OUT=str(out)), stdin_text=None)
    assert finish(handle) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["stdin"] == ""


def test_agent_gets_exactly_the_dispatch_env(
    launch: Launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONLY_IN_PARENT", "1")
    out = tmp_path / "probe.json"
    base = base_env(GIT_DIR="/hook/.git", GIT_INDEX_FILE="/hook/index", KEEP="kept")
    settings = Settings(bot_name="bot", bot_email="bot@example.invalid")
    env = agent_env(base, settings, "GAP-1", "chump/gap-1", tmp_path / "wt")
    handle = launch(py("probe.py"), env={**env, "PROBE_OUT": str(out)})
    assert finish(handle) == 0
    seen = json.loads(out.read_text(encoding="utf-8"))["env"]
    assert seen["CHUMP_DISPATCH_DEPTH"] == "1"
    assert (seen["GIT_AUTHOR_NAME"], seen["GIT_COMMITTER_EMAIL"]) == ("bot", "bot@example.invalid")
    assert seen["KEEP"] == "kept"
    assert "GIT_DIR" not in seen
    assert "GIT_INDEX_FILE" not in seen
    assert "ONLY_IN_PARENT" not in seen


# --- output: log, ring, activity, notify ----------------------------------------------


def test_log_has_header_stdout_and_stderr_goes_to_its_own_file(
    launch: Launch, tmp_path: Path
) -> None:
    log = tmp_path / "deep" / "er" / "agent.log"
    handle = launch(py("noisy.py"), log_path=log)
    assert finish(handle) == 0
    lines = log.read_text(encoding="utf-8").splitlines()
    marks = [line for line in lines if line.startswith("=== chump ")]
    assert len(marks) == 2
    assert re.fullmatch(
        rf"=== chump \S+ start: {re.escape(sys.executable)} pid \d+ group {handle.pid} ===",
        marks[0],
    )
    assert marks[1] == lines[-1]  # written after the output drained
    assert marks[1].endswith("exit: status 0 ===")
    assert [line for line in lines if line not in marks] == ["out 0", "out 1", "out 2"]
    assert handle.log_path == log
    errors = (tmp_path / "deep" / "er" / "agent.stderr.log").read_text(encoding="utf-8")
    assert {"WARN line 0", "info 0", "PANIC line 99"} <= set(errors.splitlines())
    assert len(errors.splitlines()) == 110  # 100 problem lines and 10 noise lines, whole


def test_a_second_run_appends_and_reads_only_its_own_output(launch: Launch, tmp_path: Path) -> None:
    seen: list[str] = []
    for code in ("print('first')", "print('second')"):
        handle = launch([sys.executable, "-c", code], on_stdout_line=seen.append)
        assert finish(handle) == 0
        handle.close()
    assert seen == ["first", "second"]
    log = (tmp_path / "logs" / "agent.log").read_text(encoding="utf-8")
    assert log.count("exit: status 0 ===") == 2


def test_partial_last_line_is_delivered_whole_at_exit(launch: Launch) -> None:
    seen: list[str] = []
    code = "import sys; sys.stdout.write('par'); sys.stdout.flush(); sys.stdout.write('tial')"
    handle = launch([sys.executable, "-c", code], on_stdout_line=seen.append)
    assert finish(handle) == 0
    assert seen == ["partial"]


def test_stderr_ring_keeps_only_the_last_64_problem_lines(launch: Launch) -> None:
    handle = launch(py("noisy.py"))
    assert finish(handle) == 0
    kinds = ("WARN", "error:", "Fail", "PANIC")
    assert handle.stderr_tail() == [f"{kinds[i % 4]} line {i}" for i in range(36, 100)]


def test_last_activity_advances_with_output(launch: Launch) -> None:
    handle = launch(py("noisy.py"))
    started = handle.last_activity()
    assert finish(handle) == 0
    assert started < handle.last_activity()


def test_notify_is_called_on_exit_after_status_is_known(launch: Launch) -> None:
    started = threading.Event()
    box: list[runner.ProcessHandle] = []
    statuses: list[int | None] = []

    def notify() -> None:
        started.wait(TIMEOUT)  # the handle exists once start() returned
        statuses.append(box[0].poll())

    box.append(launch([sys.executable, "-c", "pass"], notify=notify))
    started.set()
    assert finish(box[0]) == 0
    box[0].close()  # joins the waiter, so its notify has run
    assert statuses == [0]


def test_notify_wakes_on_output_and_once_more_on_exit(launch: Launch) -> None:
    calls: list[int] = []
    code = "import sys; print('a'); print('b'); print('c', file=sys.stderr)"
    handle = launch([sys.executable, "-c", code], notify=lambda: calls.append(1))
    assert finish(handle) == 0
    handle.close()
    assert 2 <= len(calls) <= 3  # the first output (per stream, within 0.5 s), and the exit


def test_callback_errors_are_logged_and_reading_goes_on(launch: Launch, tmp_path: Path) -> None:
    seen: list[str] = []

    def explode(line: str) -> None:
        seen.append(line)
        raise RuntimeError("parser bug")

    handle = launch(py("noisy.py"), on_stdout_line=explode)
    assert finish(handle) == 0
    assert seen == ["out 0", "out 1", "out 2"]
    log = (tmp_path / "logs" / "agent.log").read_text(encoding="utf-8")
    marks = [line for line in log.splitlines() if line.startswith("=== chump ")]
    assert sum("stdout callback failed: RuntimeError: parser bug" in m for m in marks) == 3
    errors = (tmp_path / "logs" / "agent.stderr.log").read_text(encoding="utf-8")
    assert errors.splitlines()[-1] == "PANIC line 99"


def test_exit_status_and_report_copy(launch: Launch) -> None:
    handle = launch([sys.executable, "-c", "raise SystemExit(3)"])
    assert finish(handle) == 3
    handle.facts["cost"] = 1.5
    report = handle.report()
    report["cost"] = 0
    assert handle.report() == {"cost": 1.5}


# --- failures to start ------------------------------------------------------------------


def test_missing_binary_is_one_line_naming_it(launch: Launch, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-agent")
    with pytest.raises(ChumpError) as info:
        launch([missing])
    assert str(info.value) == f"{missing}: command not found"
    assert "cannot start" in (tmp_path / "logs" / "agent.log").read_text(encoding="utf-8")


def test_file_without_exec_bit_is_not_executable(launch: Launch, tmp_path: Path) -> None:
    plain = tmp_path / "agent.sh"
    plain.write_text("#!/bin/sh\n", encoding="utf-8")
    with pytest.raises(ChumpError, match=r"agent\.sh: not executable$"):
        launch([str(plain)])


def test_missing_worktree_is_named(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    with pytest.raises(ChumpError, match="working directory does not exist"):
        runner.start(
            [sys.executable, "-c", "pass"],
            cwd=gone,
            env=base_env(),
            stdin_text=None,
            log_path=tmp_path / "a.log",
        )


# --- stopping -------------------------------------------------------------------------


def _gone_or_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_stop_reaches_grandchildren(launch: Launch, stop: str) -> None:
    pids: list[int] = []
    printed = threading.Event()

    def on_line(line: str) -> None:
        pids.append(int(line))
        printed.set()

    handle = launch(py("grandchild.py"), on_stdout_line=on_line)
    assert printed.wait(TIMEOUT)
    assert handle.poll() is None
    getattr(handle, stop)()
    assert finish(handle) == (-15 if stop == "terminate" else -9)
    step = threading.Event()
    for _ in range(500):  # bounded: at most ~5 s for init to reap the orphan
        if _gone_or_zombie(pids[0]):
            break
        step.wait(0.01)
    assert _gone_or_zombie(pids[0])


def test_signals_after_exit_are_harmless(launch: Launch) -> None:
    handle = launch([sys.executable, "-c", "pass"])
    assert finish(handle) == 0
    handle.terminate()
    handle.kill()
    assert handle.poll() == 0


def test_close_stops_a_running_agent_and_is_idempotent(launch: Launch) -> None:
    handle = launch([sys.executable, "-c", "import time; time.sleep(3600)"], stdin_text="hi")
    assert handle.poll() is None
    handle.close()
    assert handle.poll() == -9
    handle.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_fd_leaks_over_40_starts(tmp_path: Path) -> None:
    true = shutil.which("true")
    assert true is not None
    kept: list[runner.ProcessHandle] = []  # referenced, so garbage collection cannot hide a leak

    def cycle(i: int) -> None:
        handle = runner.start(
            [true], cwd=tmp_path, env=base_env(), stdin_text="x", log_path=tmp_path / f"{i}.log"
        )
        if i % 2:  # half finish first, half are still running when closed
            handle.wait(TIMEOUT)
        handle.close()
        kept.append(handle)

    cycle(-1)  # warm up anything opened lazily once per process
    before = _open_fds()
    for i in range(40):  # any leak per start shows: the count must come back exactly
        cycle(i)
    for _ in range(5):
        with pytest.raises(ChumpError):
            runner.start(
                [str(tmp_path / "nope")],
                cwd=tmp_path,
                env={},
                stdin_text=None,
                log_path=tmp_path / "nope.log",
            )
    assert _open_fds() == before
    assert all(handle.poll() is not None for handle in kept)


def test_plain_text_agents_keep_their_stdout_errors_in_the_ring(tmp_path: Path) -> None:
    """aider and command agents print API errors on stdout; JSON-stream agents do not."""
    script = "print('litellm.RateLimitError: rate limited you'); print('all fine')"
    for ring_stdout, expected in (
        (True, ["litellm.RateLimitError: rate limited you"]),
        (False, []),
    ):
        handle = runner.start(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            env=dict(os.environ),
            stdin_text=None,
            log_path=tmp_path / "agent.log",
            ring_stdout=ring_stdout,
        )
        assert handle.wait(timeout=30) == 0
        assert handle.stderr_tail() == expected
        handle.close()


def test_a_huge_error_line_is_bounded_in_memory_but_whole_in_the_log(tmp_path: Path) -> None:
    code = "import sys; sys.stderr.write('ERROR ' + 'z' * 4_000_000 + '\\n')"
    log = tmp_path / "big.log"
    handle = runner.start(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=dict(os.environ),
        stdin_text=None,
        log_path=log,
    )
    assert handle.wait(30) == 0
    (line,) = handle.stderr_tail()
    assert len(line) <= 2048
    assert line.endswith("more characters cut]")
    handle.close()
    assert (tmp_path / "big.stderr.log").stat().st_size > 4_000_000


def test_a_chatty_agent_wakes_the_loop_rarely_and_its_exit_always(tmp_path: Path) -> None:
    pings: list[float] = []
    code = "import sys\nfor n in range(20000): print(n)\nsys.exit(0)"
    handle = runner.start(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=dict(os.environ),
        stdin_text=None,
        log_path=tmp_path / "chatty.log",
        notify=lambda: pings.append(time.monotonic()),
    )
    assert handle.wait(30) == 0
    handle.close()
    span = max(pings) - min(pings)
    assert len(pings) <= 3 + span / 0.5  # was one per line: 20,000
    assert len(pings) >= 1  # the exit
