"""``python -m benchmarks``: run every benchmark and rewrite BENCHMARKS.md.

Each ``benchmarks/bench_*.py`` runs in a process of its own (one benchmark's memory or
imports never colour another's) and rewrites its own section; then the header gets one row
per benchmark: how its last run here went, at which commit, when, and how long it took. A
partial run (``--only``/``--skip``) rewrites only the rows of the benchmarks it ran and keeps
the others' rows, and the header says which commit the last full run (every benchmark) was
at. A benchmark run on its own (``python -m benchmarks.bench_NAME``) rewrites only its
section, whose first line names the commit it was measured at (``report.record``).

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
from typing import NamedTuple

from benchmarks.report import BENCHMARKS_MD, HEADER, commit, machine

HERE = Path(__file__).parent
RUN_MARK = re.compile(r"<!-- run -->.*?<!-- /run -->\n*", re.S)
FULL_LINE = re.compile(r"^_Last full run .*_$", re.M)
ROW = re.compile(r"^\| `(\w+)` \|(.*)\|$", re.M)
TABLE_HEAD = "| benchmark | result | measured at commit | date | took |\n|---|---|---|---|---|\n"


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


class Ran(NamedTuple):
    """How one benchmark's run went: its exit status, seconds, and whether it rewrote its
    section (a benchmark may exit non-zero after recording figures that miss a target)."""

    status: int
    took: float
    rewrote: bool


def section_text(name: str) -> str:
    """The section ``name`` of BENCHMARKS.md as it is now ("" when there is none)."""
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else ""
    found = re.search(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", text, re.S)
    return found.group(0) if found else ""


def run_one(name: str) -> Ran:
    """Run ``benchmarks/bench_NAME.py`` in a process of its own."""
    before = section_text(name)
    start = time.perf_counter()
    print(f"== {name}", flush=True)
    status = subprocess.run(
        [sys.executable, "-m", f"benchmarks.bench_{name}"],
        cwd=HERE.parent,
        env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        check=False,
    ).returncode
    took = time.perf_counter() - start
    return Ran(status, took, section_text(name) != before)


def header_block(
    old: str,
    results: dict[str, Ran],
    known: list[str],
    *,
    stamp: str,
    at: str,
    where: str,
) -> str:
    """The ``<!-- run -->`` block: a row per benchmark in ``known``, from ``results`` (this run,
    at commit ``at``, time ``stamp``) or else kept from the block in ``old``; the line of the
    last full run is new when ``results`` covers every benchmark, else kept from ``old``."""
    previous = RUN_MARK.search(old)
    kept: dict[str, list[str]] = {}  # name -> [result, commit, date, took], as written
    full = ""
    if previous:
        block = previous.group(0)
        for match in ROW.finditer(block):
            cells = [cell.strip() for cell in match.group(2).split("|")]
            if len(cells) == 2:  # the old three-column table: | name | result | took |
                cells = [cells[0], "unknown", "unknown", cells[1]]
            if len(cells) == 4:
                kept[match.group(1)] = cells
        found = FULL_LINE.search(block)
        full = found.group(0) if found else ""
    if set(known) <= set(results):
        full = f"_Last full run (every benchmark): {stamp}, commit {at}, on {where}._"
    rows = ""
    for name in known:
        cells = kept.get(name, ["not run yet", "", "", ""])
        if name in results:
            status, took, rewrote = results[name]
            if status == 0 or rewrote or name not in kept:
                result = "ok" if status == 0 else f"**failed** (exit {status})"
                cells = [result, at, stamp, f"{took:.0f} s"]
            else:  # its section is still the earlier measurement: keep that row's figures
                cells = [f"**failed** at {at}, {stamp} (exit {status}); section from before",
                         *cells[1:]]  # fmt: skip
        rows += f"| `{name}` | {' | '.join(cells)} |\n"
    return (
        "<!-- run -->\n"
        f"{full or '_No full run of `python -m benchmarks` recorded yet._'}\n\n"
        "Each benchmark's last run by `python -m benchmarks` (a partial run, `--only`/`--skip`, "
        "updates only its own rows). Each section below says the date, commit and machine it "
        "was measured at, also when its benchmark was run on its own.\n\n"
        f"{TABLE_HEAD}{rows}<!-- /run -->\n\n"
    )


def write_header(results: dict[str, Ran], at: str) -> None:
    """Rewrite the header block of BENCHMARKS.md after a run at commit ``at`` (see
    ``header_block``)."""
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    block = header_block(text, results, names(), stamp=stamp, at=at, where=describe_machine())
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
    at = commit()  # before the run: what was measured, whatever changes while it runs
    results = {name: run_one(name) for name in chosen}
    write_header(results, at)
    failed = [name for name, ran in results.items() if ran.status != 0]
    print(
        f"{len(chosen) - len(failed)} of {len(chosen)} benchmarks ran; failed: {failed or 'none'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
