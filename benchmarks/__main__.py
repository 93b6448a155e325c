"""``python -m benchmarks``: run every benchmark and rewrite BENCHMARKS.md.

Each ``benchmarks/bench_*.py`` runs in a process of its own (one benchmark's memory or
imports never colour another's) and rewrites its own section; then the header says when the
whole set last ran, on what machine and at which commit, and how each benchmark went.

``--only NAME[,NAME]`` / ``--skip NAME[,NAME]`` (names without ``bench_``), ``--list``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.report import BENCHMARKS_MD, HEADER, machine

HERE = Path(__file__).parent
RUN_MARK = re.compile(r"<!-- run -->.*?<!-- /run -->\n*", re.S)


def names() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def describe_machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu or platform.processor() or platform.machine()}{memory}; {machine()}"


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def run_one(name: str) -> tuple[int, float]:
    start = time.perf_counter()
    print(f"== {name}", flush=True)
    status = subprocess.run(
        [sys.executable, "-m", f"benchmarks.bench_{name}"],
        cwd=HERE.parent,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        check=False,
    ).returncode
    return status, time.perf_counter() - start


def write_header(results: dict[str, tuple[int, float]]) -> None:
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = "".join(
        f"| `{name}` | {'ok' if status == 0 else f'failed (exit {status})'} | {took:.0f} s |\n"
        for name, (status, took) in results.items()
    )
    block = (
        "<!-- run -->\n"
        f"_Last run of `python -m benchmarks`: {stamp}, commit {commit()}, on "
        f"{describe_machine()}._\n\n| benchmark | result | took |\n|---|---|---|\n{rows}"
        "<!-- /run -->\n\n"
    )
    text = RUN_MARK.sub("", text)
    head, _, rest = text.partition("\n<!-- bench:")
    BENCHMARKS_MD.write_text(f"{head.rstrip()}\n\n{block}<!-- bench:{rest}" if rest else
                             f"{head.rstrip()}\n\n{block}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated names")
    parser.add_argument("--skip", default="", help="comma-separated names")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args()
    known = names()
    if args.list:
        print("\n".join(known))
        return 0
    only = [n for n in args.only.split(",") if n]
    skip = {n for n in args.skip.split(",") if n}
    unknown = sorted((set(only) | skip) - set(known))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)} (valid: {', '.join(known)})")
    chosen = [n for n in (only or known) if n not in skip]
    results = {name: run_one(name) for name in chosen}
    write_header(results)
    failed = [name for name, (status, _) in results.items() if status != 0]
    print(
        f"{len(chosen) - len(failed)} of {len(chosen)} benchmarks ran; failed: {failed or 'none'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
