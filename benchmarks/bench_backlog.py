"""Load + validate + pick on a generated backlog with random dependencies (target: <= 2 s at 100k).

Run: ``.venv/bin/python -m benchmarks.bench_backlog [--gaps N] [--repeat R] [--no-write]``.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.report import record, verdict
from pytest_chump.backlog import load_backlog
from pytest_chump.core.records import PickRequest
from pytest_chump.pick.picker import pick, recently_done_ids

TARGET_S = 2.0


def generate(n: int, seed: int = 0) -> str:
    """A valid backlog: ~30% of gaps depend on 1-3 earlier gaps, ~40% are done."""
    rng = random.Random(seed)
    lines = ["gaps:"]
    for i in range(n):
        status = "done" if rng.random() < 0.4 else "open"
        lines += [
            f"  - id: G-{i:06d}",
            f"    title: generated gap {i}",
            f"    priority: P{rng.randrange(5)}",
            f"    effort: {rng.choice(['xs', 's', 'm', 'l', 'xl'])}",
            f"    status: {status}",
        ]
        if status == "done":
            lines.append(
                f"    closed_date: '2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}'"
            )
        if i and rng.random() < 0.3:
            deps = {f"G-{rng.randrange(i):06d}" for _ in range(rng.randint(1, 3))}
            lines.append(f"    depends_on: [{', '.join(sorted(deps))}]")
    return "\n".join(lines) + "\n"


def run_once(path: Path, order: str) -> tuple[float, float, float, int]:
    gc.collect()  # the previous run's 100k objects must not be collected on this run's clock
    t0 = time.perf_counter()
    backlog = load_backlog(path)
    t1 = time.perf_counter()
    request = PickRequest(
        slots=8,
        done_ids=backlog.done_ids(),
        kind="any",
        order=order,
        recently_done=recently_done_ids(backlog.gaps),
    )
    picked = pick(backlog.gaps, request)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, t2 - t0, len(picked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gaps", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gaps.yaml"
        path.write_text(generate(args.gaps))
        size_mb = path.stat().st_size / 1e6
        rows = []
        totals: dict[str, float] = {}
        for order in ("critical-path", "declared"):
            runs = [run_once(path, order) for _ in range(args.repeat)]
            load, pick_s, total = (statistics.median(r[i] for r in runs) for i in range(3))
            totals[order] = total
            rows.append(f"| {order} | {load:.3f} | {pick_s:.3f} | **{total:.3f}** | {runs[0][3]} |")
            print(rows[-1])
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    body = (
        f"{args.gaps:,} gaps ({size_mb:.1f} MB of YAML, ~30% with 1-3 random dependencies), "
        f"median of {args.repeat} runs; libyaml C loader: {yaml.__with_libyaml__}. "
        f"Target: load + validate + pick <= {TARGET_S:.0f} s: "
        + "; ".join(
            f"{order} **{verdict(t, TARGET_S)}** ({t:.3f} s)" for order, t in totals.items()
        )
        + ". "
        f"Peak RSS of the process: {rss_mb:.0f} MB.\n\n"
        "| picker_order | load + validate (s) | pick (s) | total (s) | picked |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows)
    )
    if not args.no_write:
        record("backlog", "Backlog load + validate + pick", body)
    print(body)


if __name__ == "__main__":
    main()
