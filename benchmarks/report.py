"""Writes a benchmark's result table into its own section of BENCHMARKS.md.

Each benchmark owns the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``;
running it again replaces only that section, so results of other benchmarks stay. Every
section says the date, commit and machine it was measured at (sections are rerun one at a
time, so the file's figures come from different commits).
"""

from __future__ import annotations

import platform
import re
import subprocess
import time
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nSpeed and memory targets of pytest-chump, measured by `benchmarks/`.\n"


def cpu_reference_ms() -> float:
    """A fixed pure-Python loop (best of 5): this VM's speed drifts, so every section says how
    fast the machine was when it was measured."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.perf_counter() - start)
    return best * 1000


def machine() -> str:
    import os

    return (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
        f"CPU reference loop {cpu_reference_ms():.0f} ms"
    )


def commit() -> str:
    """The short commit the checkout is at, ``+ uncommitted changes`` when tracked files other
    than BENCHMARKS.md (which the run itself rewrites) differ from it: a figure measured on
    uncommitted code must not be credited to the commit."""
    root = BENCHMARKS_MD.parent
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
    ).stdout.strip()
    if not head:
        return "unknown"
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md"],
        cwd=root,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head} + uncommitted changes" if changed else head


def verdict(value: float, target: float, *, at_most: bool = True) -> str:
    """``met`` or ``not met``: ``value`` against a target that is a maximum (``at_most``) or a
    minimum. Every section with a target says which, so an unmet one is never left implicit."""
    ok = value <= target if at_most else value >= target
    return "met" if ok else "not met"


def record(name: str, title: str, body: str) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md with ``body``, under a line
    saying when, at which commit and on what machine it was measured."""
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
    stamp = time.strftime("%Y-%m-%d")
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"_Measured {stamp} at commit {commit()} on {machine()}._\n\n"
        f"{body.strip()}\n<!-- /bench:{name} -->"
    )
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else f"{text}\n{section}\n"
    BENCHMARKS_MD.write_text(text)
