"""Agents outlive the orchestrator that started them, and a later one adopts them by pid.

A driver process starts an agent with ``agents.process.start`` and dies at once (``os._exit``), as a
killed orchestrator or a ``dispatch`` without ``--watch`` does. The agent keeps writing to
stdout and stderr; with pipes its next write would break (SIGPIPE/EPIPE), with files it lives
on and finishes. The agent only finishes once the test releases it, so "still running" is
checked deterministically; every wait is bounded and waits on a condition.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_chump.agents.adopted_handle import AdoptedHandle
from pytest_chump.agents.process import stderr_log
from pytest_chump.state.liveness import proc_start_ticks
from tests.waiting import alive, until

TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]
MIN_TICKS = 150  # ~3 s of output at one line per 20 ms

AGENT = """\
import os, sys, time
release, marker, cap = sys.argv[1], sys.argv[2], time.monotonic() + 120
sys.stdin.read()  # the prompt, then EOF
i = 0
while i < {min_ticks} or not os.path.exists(release):
    print(f"tick {{i}}", flush=True)
    print(f"ERROR tick {{i}}", file=sys.stderr, flush=True)
    print(f"noise {{i}}", file=sys.stderr, flush=True)
    i += 1
    if time.monotonic() > cap:
        sys.exit(3)
    time.sleep(0.02)
print("done", flush=True)
with open(marker, "w") as f:
    f.write(str(i))
"""

DRIVER = """\
import os, sys
from pathlib import Path
from pytest_chump.agents import process as runner
agent, release, marker, log = sys.argv[1:5]
handle = runner.start(
    [sys.executable, agent, release, marker],
    cwd=Path(log).parent,
    env={{"PATH": os.environ.get("PATH", os.defpath)}},
    stdin_text="do the work\\n",
    log_path=Path(log),
    ring_stdout=True,
)
print(handle.pid, flush=True)
os._exit(0)  # the orchestrator dies: no close(), no kill, its reader threads vanish
"""


@dataclass
class Orphan:
    pid: int
    log: Path
    release: Path
    marker: Path


@pytest.fixture
def orphan(tmp_path: Path) -> Iterator[Orphan]:
    """An agent whose orchestrator (the driver process) already exited."""
    agent, driver = tmp_path / "agent.py", tmp_path / "driver.py"
    agent.write_text(AGENT.format(min_ticks=MIN_TICKS), encoding="utf-8")
    driver.write_text(DRIVER.format(), encoding="utf-8")
    logs = tmp_path / ".chump" / "logs"
    logs.mkdir(parents=True)
    orphan = Orphan(0, logs / "gap-1.log", tmp_path / "release", tmp_path / "marker")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, str(driver), str(agent), str(orphan.release), str(orphan.marker)]
    done = subprocess.run(
        [*argv, str(orphan.log)], capture_output=True, text=True, env=env, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    orphan.pid = int(done.stdout.strip())
    try:
        yield orphan
    finally:
        orphan.release.touch()
        cmdline = Path(f"/proc/{orphan.pid}/cmdline")
        with contextlib.suppress(OSError):
            if str(agent) in cmdline.read_text():  # still our agent, not a recycled pid
                os.killpg(orphan.pid, signal.SIGKILL)


def test_agent_survives_its_orchestrator_and_finishes(orphan: Orphan) -> None:
    assert alive(orphan.pid)  # it cannot finish before the release file exists

    def stdout_lines() -> list[str]:
        return orphan.log.read_text(encoding="utf-8").splitlines()

    # it goes on writing after the driver died: a broken pipe would have killed it
    assert until(lambda: f"tick {MIN_TICKS}" in stdout_lines())
    assert alive(orphan.pid)
    orphan.release.touch()
    assert until(orphan.marker.exists)
    assert until(lambda: "done" in stdout_lines())
    ticks = int(orphan.marker.read_text(encoding="utf-8"))
    assert ticks > MIN_TICKS
    lines = stdout_lines()
    assert [ln for ln in lines if not ln.startswith("=== chump ")] == [
        *(f"tick {i}" for i in range(ticks)),
        "done",
    ]
    assert lines[0].startswith("=== chump ")  # the agent reads its stdin only after the mark
    assert lines[0].endswith(f"group {orphan.pid} ===")
    errors = stderr_log(orphan.log).read_text(encoding="utf-8").splitlines()
    assert errors[-2:] == [f"ERROR tick {ticks - 1}", f"noise {ticks - 1}"]
    assert len(errors) == 2 * ticks


def test_adopted_handle_watches_the_orphan(orphan: Orphan) -> None:
    handle = AdoptedHandle(orphan.pid, proc_start_ticks(orphan.pid), orphan.log)
    assert handle.poll() is None
    assert until(lambda: len(handle.stderr_tail()) >= 2)
    assert all(line.startswith("ERROR tick ") for line in handle.stderr_tail())
    orphan.release.touch()
    assert until(lambda: handle.poll() == 0)
    assert orphan.marker.exists()
    ticks = int(orphan.marker.read_text(encoding="utf-8"))
    tail = handle.stderr_tail()
    assert tail == [f"ERROR tick {i}" for i in range(ticks - 64, ticks)]
    assert handle.report() == {"adopted": True, "exit_status_unknown": True}


def test_adopted_handle_reads_stderr_from_logs_of_older_versions(tmp_path: Path) -> None:
    log = tmp_path / "old.log"
    log.write_text("=== start ===\nout\n[stderr] WARN slow\n[stderr] info\nERROR on stdout\n")
    handle = AdoptedHandle(None, "", log)
    assert handle.stderr_tail() == ["WARN slow"]
    assert handle.poll() == 0
