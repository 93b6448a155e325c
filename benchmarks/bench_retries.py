"""Retries with feedback, measured: a 20-gap backlog whose agents fail their first check run
30% of the time (which 6 gaps, drawn with a fixed seed). The same backlog runs with
``retries = 2`` and with ``retries = 0``: gaps shipped, gaps left for a human, agent starts,
wall time. Real git repositories (a bare origin and a clone), real agent processes, the real
loop and a real merge gate whose check fails on the work of a first attempt that failed.

Run: ``.venv/bin/python -m benchmarks.bench_retries [--gaps N] [--fail-rate R] [--no-write]``.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import repos
from benchmarks.report import record
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.state.store import Store

AGENT = """\
import os, subprocess, sys
gap = os.environ["CHUMP_GAP_ID"]
prompt = sys.stdin.read()
first_fails = gap in os.environ["FAIL_FIRST"].split(",")
broken = first_fails and "Previous attempt" not in prompt
open(f"{gap}.txt", "w").write(("broken" if broken else "fixed") + f" {os.getpid()}\\n")
subprocess.run(["git", "add", f"{gap}.txt"], check=True)
subprocess.run(["git", "commit", "--quiet", "-m", gap], check=True)
"""
CHECK = (
    "import pathlib, sys\n"
    "bad = [p.stem for p in pathlib.Path('.').glob('*.txt') if 'broken' in p.read_text()]\n"
    "for b in bad: print(f'FAILED tests/test_{b}.py::test_{b}')\n"
    "sys.exit(1 if bad else 0)\n"
)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def project(root: Path, gaps: int, retries: int) -> Path:
    lines = [f"  - {{id: R-{n:02d}, title: gap {n}, priority: P1, effort: s}}" for n in range(gaps)]
    settings = f'max_parallel = 4\npoll_interval = "50ms"\nexit_grace = "20s"\nretries = {retries}'
    gate = (
        "\n[tool.chump.merge_gate]\n"
        f'command = ["{sys.executable}", "-c", {json.dumps(CHECK)}]\ntimeout = "60s"\n'
    )
    return repos.project(root, lines, settings, AGENT, gate)


def measure(gaps: int, fail_first: list[str], retries: int) -> dict[str, float]:
    import os

    os.environ["FAIL_FIRST"] = ",".join(fail_first)
    with tempfile.TemporaryDirectory() as folder:
        repo = project(Path(folder), gaps, retries)
        app, out = App.create({"repo_root": str(repo)}), io.StringIO()
        provider = app.provider()
        start = time.perf_counter()
        with Store.for_repo(repo) as store:
            orch = Orchestrator(app, store, app.spawner_factory(), provider, Progress(out, out))
            provider.notify = orch.wake.set  # type: ignore[attr-defined]
            orch.run()
            wall = time.perf_counter() - start
            return {
                "shipped": len(store.shipped_ids()),
                "needs_human": len(store.holds()),
                "starts": len(store.dispatches()),
                "wall_s": wall,
            }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gaps", type=int, default=20)
    parser.add_argument("--fail-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    ids = [f"R-{n:02d}" for n in range(args.gaps)]
    fail_first = sorted(rng.sample(ids, round(args.fail_rate * args.gaps)))
    rows = [(r, measure(args.gaps, fail_first, r)) for r in (2, 0)]
    body = (
        f"{args.gaps} gaps, {len(fail_first)} of them ({len(fail_first) / args.gaps:.0%}) fail "
        f"their first check (seed {args.seed}); max_parallel 4, merge gate.\n\n"
        "| retries | shipped | needs a human | agent starts | wall time |\n|---|---|---|---|---|\n"
    )
    for retries, m in rows:
        body += (
            f"| {retries} | {m['shipped']:.0f} / {args.gaps} | {m['needs_human']:.0f} | "
            f"{m['starts']:.0f} | {m['wall_s']:.1f} s |\n"
        )
    print(body)
    if not args.no_write:
        record("retries", "Retries with feedback: ships with and without them", body)


if __name__ == "__main__":
    main()
