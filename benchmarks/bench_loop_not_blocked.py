"""Dispatch never blocks the loop, measured in a repository of 20,000 files.

Two gaps start together: QUICK's agent exits at once, SLOW's worktree takes a full
``git worktree add`` of 20,000 files (the repository lock makes it wait for QUICK's first).
Measured: from QUICK's agent exit to its outcome being recorded, with the worktrees made on
the loop thread (``dispatch_workers = 0``: the outcome waits for SLOW's worktree) and by the
workers (default 2: it is recorded within one poll). A provider that reports MERGED once the
agent exited isolates the loop from a forge; the poll interval is 0.5 s.

Run: ``.venv/bin/python -m benchmarks.bench_loop_not_blocked [--files N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_large_repo import FILES, large_repo
from benchmarks.bench_refill import MergedOnExit
from benchmarks.report import record
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.state.store import Store

POLL_S = 0.5
AGENT = "import time; print('exit-at', time.time(), flush=True)"


def configure(repo: Path) -> None:
    (repo / "docs").mkdir(exist_ok=True)
    (repo / "docs/gaps.yaml").write_text(
        "gaps:\n  - {id: QUICK-1, priority: P0, effort: s}\n"
        "  - {id: SLOW-1, priority: P1, effort: s}\n"
    )
    (repo / "pyproject.toml").write_text(
        f"""[tool.chump]
spawner = "script"
pr_provider = "merged-on-exit"
base_ref = "HEAD"
max_parallel = 2
poll_interval = "{POLL_S}s"

[tool.chump.spawners.script]
command = ["{sys.executable}", "-c", {json.dumps(AGENT)}]
"""
    )
    for args in (["add", "-A"], ["commit", "-q", "-m", "backlog"]):
        subprocess.run(
            ["git", "-c", "user.name=b", "-c", "user.email=b@x", *args], cwd=repo, check=True
        )


def measure(repo: Path, workers: int) -> tuple[float, float]:
    """(QUICK's exit -> its outcome recorded, seconds of the whole run)."""
    provider = MergedOnExit()
    app = App.create({"repo_root": str(repo), "dispatch_workers": workers})
    app.pm.register(provider)
    out = io.StringIO()
    start = time.perf_counter()
    with Store.for_repo(repo) as store:
        orch = Orchestrator(app, store, app.spawner_factory(), app.provider(), Progress(out, out))
        orch.run()
        (quick,) = store.dispatches("gap_id = 'QUICK-1'")
    took = time.perf_counter() - start
    log = Path(quick.log_path or "")
    exited = max(float(line.split()[1]) for line in log.read_text().splitlines()
                 if line.startswith("exit-at"))  # fmt: skip
    assert quick.ended_at is not None, out.getvalue()
    subprocess.run(["git", "worktree", "prune"], cwd=repo, check=True)
    return quick.ended_at - exited, took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=FILES)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = []
    with large_repo(args.files) as repo:
        configure(repo)
        for workers in (0, 2):
            shutil.rmtree(repo / ".chump", ignore_errors=True)
            for branch in ("chump/quick-1", "chump/slow-1"):
                subprocess.run(["git", "branch", "-D", branch], cwd=repo, capture_output=True)
            latency, took = measure(repo, workers)
            rows.append((workers, latency, took))
            print(workers, round(latency, 2), round(took, 1), flush=True)
    body = (
        f"A repository of {args.files:,} files; QUICK's agent exits at once while SLOW's "
        f"worktree is created. Poll interval {POLL_S:g} s; a provider reporting MERGED once the "
        "agent exited.\n\n| worktrees made | QUICK's exit -> outcome recorded | whole run |\n"
        "|---|---|---|\n"
        + "".join(
            f"| {'on the loop thread (`dispatch_workers = 0`)' if w == 0 else f'by {w} workers'} "
            f"| **{lat:.2f} s** | {took:.1f} s |\n"
            for w, lat, took in rows
        )
        + f"\nTarget: with workers, within one poll ({POLL_S:g} s).\n"
    )
    print(body)
    if not args.no_write:
        record("loop_not_blocked", "Dispatch never blocks the loop (20,000-file repository)", body)


if __name__ == "__main__":
    main()
