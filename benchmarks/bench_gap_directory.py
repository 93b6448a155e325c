"""A backlog directory shaped like the upstream one: ~4,200 one-gap files, ~17 MB of YAML with
legacy data (statuses chump does not know, priorities like INFRA:P2, quoted dates, dangling
dependencies, unsafe ids). Measures chump's load against parsing the same files with libyaml
alone (target <= 2x), and checks that the dry run picks exactly what the reference batch
picker picks (gaps with problems are skipped, as the reference skips them).

Run: ``.venv/bin/python -m benchmarks.bench_gap_directory [--files N] [--repeat R] [--no-write]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from benchmarks.report import record
from pytest_chump.backlog import load_backlog
from pytest_chump.core.model import id_problem
from pytest_chump.loop.app import App

TARGET_RATIO = 2.0
STATUSES = ["open"] * 30 + ["done"] * 50 + ["shipped", "in_review", "in-progress", "wont_fix"] * 5
STATUSES += ["already_satisfied", "deferred", "blocked", "perpetual"] * 2
DOMAINS = ["COG", "COMP", "INFRA", "AGT", "AUTO", "ACP", "CREDIBLE", "MEM", "UI", "EVAL"]
WORDS = ["router", "cache", "agent", "prompt", "merge", "gate", "queue", "ledger"]
WORDS += ["budget", "probe", "lease", "vector"]


def generate(root: Path, files: int, seed: int = 0) -> list[str]:
    """Write ``files`` one-gap files below ``root``; their ids in file order."""
    rng = random.Random(seed)
    ids = []
    for n in range(files):
        domain = rng.choice(DOMAINS)
        gap_id = f"{domain}-{n:04d}"
        if rng.random() < 0.002:
            gap_id = f"{domain} {n}; legacy"  # an id no path or ref may carry
        ids.append(gap_id)
    for n, gap_id in enumerate(ids):
        (root / f"{n:05d}-{_file_name(gap_id, rng)}.yaml").write_text(
            _gap_yaml(gap_id, ids[:n], rng), encoding="utf-8"
        )
    return ids


def _file_name(gap_id: str, rng: random.Random) -> str:
    name = gap_id.replace(" ", "_").replace(";", "")
    return name + ("-\x1b[1mbold" if rng.random() < 0.001 else "")  # hostile, now and then


def _gap_yaml(gap_id: str, earlier: list[str], rng: random.Random) -> str:
    status = rng.choice(STATUSES)
    priority = f"P{rng.randrange(5)}" if rng.random() > 0.01 else "INFRA:P2"
    lines = [
        f"- id: {gap_id!r}" if " " in gap_id else f"- id: {gap_id}",
        f"  domain: {gap_id.split('-')[0].lower()}",
        f"  title: {' '.join(rng.choices(WORDS, k=6))}",
        f"  status: {status}",
        f"  priority: {priority}",
        f"  effort: {rng.choice(['xs', 's', 'm', 'l', 'xl'])}",
        "  description: |",
    ]
    lines += [f"    {' '.join(rng.choices(WORDS, k=12))}" for _ in range(rng.randint(32, 64))]
    if earlier and rng.random() < 0.35:
        deps = {rng.choice(earlier) for _ in range(rng.randint(1, 3))}
        if rng.random() < 0.03:
            deps.add("GONE-0001")  # a gap deleted long ago
        shown = sorted(repr(d) if " " in d else d for d in deps)
        lines.append(f"  depends_on: [{', '.join(shown)}]")
    lines.append("  source_doc: docs/design/notes.md")
    if status == "done":
        date = f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        lines.append(f"  closed_date: '{date}'" if rng.random() < 0.5 else f"  closed_date: {date}")
    return "\n".join(lines) + "\n\n"


# --- the reference ------------------------------------------------------------------------


def reference_pick(entries: Iterable[dict[str, Any]], n: int) -> list[str]:
    """The reference batch picker over raw entries: open, P0-P2, not xl, every dependency done,
    stable by priority, the first ``n``. Entries it cannot use are skipped, as serde skips
    them there; an id chump refuses as unsafe is skipped too (chump never dispatches one)."""
    gaps = [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]
    done = {g["id"] for g in gaps if g.get("status") == "done"}
    rank = {"P0": 0, "P1": 1, "P2": 2}
    ready = [
        g
        for g in gaps
        if g.get("status") == "open"
        and g.get("priority") in rank
        and g.get("effort") != "xl"
        and all(d in done for d in g.get("depends_on") or [])
        and id_problem(g["id"]) is None
    ]
    ready.sort(key=lambda g: rank[g["priority"]])
    return [g["id"] for g in ready[:n]]


def raw_entries(root: Path) -> list[dict[str, Any]]:
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    entries = []
    for path in sorted(root.glob("*.yaml")):
        entries += yaml.load(path.read_bytes(), Loader=loader) or []
    return entries


def chump_pick(root: Path, repo: Path, n: int) -> list[str]:
    flags = {
        "repo_root": str(repo),
        "backlog": str(root.relative_to(repo)),
        "picker_order": "declared",
        "kind": "any",
        "bias_threshold": "1.0",
    }
    app = App.create(flags, env={})
    return [g.id for g in app.pick(app.load_backlog(), n)]


# --- timing -------------------------------------------------------------------------------


def time_chump(root: Path) -> float:
    start = time.perf_counter()
    load_backlog(root, "gaps")
    return time.perf_counter() - start


def time_libyaml(root: Path) -> float:
    start = time.perf_counter()
    raw_entries(root)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=4200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        root = repo / "docs" / "gaps"
        root.mkdir(parents=True)
        generate(root, args.files)
        size = sum(p.stat().st_size for p in root.iterdir()) / 1e6
        backlog = load_backlog(root, "gaps")
        quarantined = sum(1 for g in backlog.gaps if g.id in backlog.quarantined)
        ours, reference = chump_pick(root, repo, 50), reference_pick(raw_entries(root), 50)
        same = ours == reference
        chump_s = [time_chump(root) for _ in range(args.repeat)]
        yaml_s = [time_libyaml(root) for _ in range(args.repeat)]
    ratio = statistics.median(chump_s) / statistics.median(yaml_s)
    verdict = "same" if same else "DIFFERENT"
    body = f"""
{args.files:,} one-gap files, {size:.1f} MB of YAML shaped like the upstream `docs/gaps/`
(block-scalar descriptions, unknown statuses, `INFRA:P2`, quoted dates, dangling dependencies,
a few unsafe ids and hostile file names): {len(backlog.problems)} problems, {quarantined} gaps
quarantined. Median of {args.repeat}.

| measure | median | target |
|---|---|---|
| chump: read + check the directory | {statistics.median(chump_s):.3f} s | |
| libyaml alone: read + `yaml.load` (C loader) of each file | {statistics.median(yaml_s):.3f} s | |
| ratio chump / libyaml | **{ratio:.2f}** | <= {TARGET_RATIO:g} |
| dry run (declared order) picks the reference batch picker's 50 | **{verdict}** | same |
"""
    print(body)
    if not args.no_write:
        record("gap_directory", "Backlog directory shaped like the upstream one", body)
    return 0 if same and ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
