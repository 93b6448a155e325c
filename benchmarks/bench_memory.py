"""Peak memory of a real ``chump dispatch --no-dry-run --watch`` with 64 agents in flight:
a real repository with a bare origin, 64 gaps, ``max_parallel = 64``, real worktrees and agent
processes (each waits until the run is stopped). The orchestrator's peak RSS (``VmHWM``) is read
once all 64 are dispatched; then SIGTERM stops the run and its agents.

Target: <= 80 MB. (1,000 simulated agents in flight are measured by ``bench_simulate``.)

Run: ``.venv/bin/python -m benchmarks.bench_memory [--agents N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import repos
from benchmarks.report import record

AGENT = "import sys, time\nsys.stdin.read()\nprint('working', flush=True)\ntime.sleep(3600)\n"


def project(root: Path, agents: int) -> Path:
    lines = [f"  - {{id: M-{n:03d}, priority: P1, effort: s}}" for n in range(agents)]
    settings = f'max_parallel = {agents}\npoll_interval = "2s"\nkill_grace = "2s"'
    return repos.project(root, lines, settings, AGENT)


def peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def measure(agents: int) -> tuple[float, float, int]:
    """(peak RSS MB with all agents in flight, seconds to dispatch them all, exit status)."""
    with tempfile.TemporaryDirectory() as folder:
        repo = project(Path(folder), agents)
        events = Path(folder) / "events.jsonl"
        start = time.perf_counter()
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest_chump.cli", "dispatch", "--no-dry-run", "--watch",
             "--events", str(events)],
            cwd=repo,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )  # fmt: skip
        done = threading.Event()
        dispatched = 0
        while not done.wait(0.2):
            if events.exists():
                lines = events.read_text().splitlines()
                dispatched = sum(json.loads(ln)["event"] == "dispatched" for ln in lines)
            if dispatched >= agents or run.poll() is not None:
                break
        took = time.perf_counter() - start
        peak = peak_kb(run.pid) / 1024
        run.send_signal(signal.SIGTERM)
        status = run.wait(timeout=300)
        return peak, took, status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=64)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    peak, took, status = measure(args.agents)
    body = (
        f"`chump dispatch --no-dry-run --watch` with {args.agents} agents in flight (real "
        f"worktrees and agent processes, the git provider, `dispatch_workers = 2`): the "
        f"orchestrator's peak RSS **{peak:.0f} MB** (target <= 80 MB); all {args.agents} "
        f"dispatched in {took:.1f} s; stopped by SIGTERM with exit status {status} (143 "
        "expected: every agent stopped and recorded).\n"
    )
    print(body)
    if not args.no_write:
        record("memory", "Memory of a run with 64 agents in flight", body)


if __name__ == "__main__":
    main()
