"""A repository of 20,000 small files, a few folders deep (built in a second or two with
``git fast-import``): what a dispatch's workspace costs there.

Workspaces: a fresh ``git worktree add`` (the median of a few) against the same dispatch with
the warm worktree pool (``worktree_pool = 1``): ``PooledWorktrees.prepare`` takes the parked
worktree of the previous gap, checks the new branch out at a newer base (other gaps landed in
between: a few files changed), cleans it and moves it to the gap's path. Target: the pooled
prepare costs <= 20% of the fresh ``git worktree add``, and every gap finds the ignored build
cache (``node_modules/``, 1,000 files) the previous gap left. Teardown is measured too: a
fresh worktree's removal deletes its 20,000 files, a pooled one is parked.

Each gap's "agent" changes a few tracked files and leaves untracked ones, so teardown saves
work and the next prepare has something to undo. The module is meant to grow: ``make_repo``,
``advance_base`` and each ``measure_*`` / ``*_section`` pair can be imported on their own.

Run: ``.venv/bin/python -m benchmarks.bench_large_repo [--files N] [--repeat R] [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from benchmarks.report import record
from pytest_chump.dispatch.workspaces import GitWorktrees, PooledWorktrees

TARGET_RATIO = 0.20
FILES = 20_000
REPEAT = 5
FANOUT = 20  # folders per level: src/aNN/bNN/ holds FILES / 400 files each
CACHE_FILES = 1_000
IGNORED = ("node_modules/", "target/", ".venv/")
MEMORY = "/dev/shm"  # tmpfs: the pool's worst case (creating files costs next to nothing)
T = TypeVar("T")
BOT = {
    f"GIT_{role}_{part}": value
    for role in ("AUTHOR", "COMMITTER")
    for part, value in (("NAME", "bench"), ("EMAIL", "bench@example.invalid"))
}


def git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        input=stdin,
        capture_output=True,
        check=True,
        env={**os.environ, **BOT},
    )
    return proc.stdout.decode().strip()


def file_path(n: int, files: int) -> str:
    per_folder = max(1, files // (FANOUT * FANOUT))
    folder = n // per_folder
    return f"src/a{folder // FANOUT % FANOUT:02d}/b{folder % FANOUT:02d}/f{n:05d}.txt"


def _file_text(n: int, version: int) -> bytes:
    return f"file {n} version {version}\n{'x' * (60 + n % 40)}\n".encode()


def _fast_import(
    repo: Path, message: str, entries: Iterator[tuple[str, bytes]], parent: str
) -> str:
    """One commit on ``main`` (after ``parent`` when given) with ``entries`` as inline blobs."""
    stamp = int(time.time())
    chunks = [
        b"commit refs/heads/main\n",
        f"committer bench <bench@example.invalid> {stamp} +0000\n".encode(),
        f"data {len(message)}\n{message}\n".encode(),
    ]
    if parent:
        chunks.append(f"from {parent}\n".encode())
    for path, text in entries:
        chunks.append(f"M 100644 inline {path}\ndata {len(text)}\n".encode() + text + b"\n")
    git(repo, "fast-import", "--quiet", "--force", stdin=b"".join(chunks))
    return git(repo, "rev-parse", "main")


def make_repo(path: Path, files: int = FILES) -> str:
    """A repository at ``path`` whose ``main`` holds ``files`` small files under ``src/`` (two
    folder levels of 20) and a ``.gitignore`` for the usual build caches; its commit.

    The main work tree is left unchecked-out: dispatches work in worktrees, and checking
    20,000 files out here would only make the set-up slower.
    """
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", "-b", "main")

    def entries() -> Iterator[tuple[str, bytes]]:
        yield ".gitignore", "".join(f"{name}\n" for name in IGNORED).encode()
        for n in range(files):
            yield file_path(n, files), _file_text(n, 0)

    return _fast_import(path, "a large repository", entries(), "")


def advance_base(repo: Path, version: int, changed: int = 20, files: int = FILES) -> str:
    """A newer ``main``: ``changed`` files rewritten (other gaps landed); its commit."""
    picks = [(version * 7919 + k * 104_729) % files for k in range(changed)]
    entries = ((file_path(n, files), _file_text(n, version)) for n in picks)
    return _fast_import(repo, f"land {version}", entries, git(repo, "rev-parse", "main"))


def agent_work(worktree: Path, gap: int) -> None:
    """What an agent leaves: a few tracked files changed, untracked files, a build cache."""
    for n in range(3):
        target = worktree / file_path(gap * 31 + n, FILES)
        if target.exists():
            target.write_text(f"changed by gap {gap}\n")
    (worktree / f"notes-{gap}.md").write_text("left behind\n")
    cache = worktree / "node_modules" / "pkg"
    if not cache.is_dir():
        cache.mkdir(parents=True)
        for n in range(CACHE_FILES):
            (cache / f"m{n:04d}.js").write_text(f"module.exports = {n};\n")
    (worktree / "node_modules" / "built-by").write_text(str(gap))


def _timed(step: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = step()
    return time.perf_counter() - start, result


def _stats(samples: list[float]) -> str:
    return f"{statistics.median(samples):.3f} ({min(samples):.3f}-{max(samples):.3f})"


# --- workspaces: a fresh worktree against a pooled one ----------------------------------------


@dataclass
class WorkspaceResult:
    files: int
    repeat: int
    fresh_add: list[float] = field(default_factory=list)  # raw `git worktree add -b`
    fresh_prepare: list[float] = field(default_factory=list)  # GitWorktrees.prepare
    fresh_teardown: list[float] = field(default_factory=list)  # save + `git worktree remove`
    pooled_prepare: list[float] = field(default_factory=list)
    pooled_teardown: list[float] = field(default_factory=list)  # save + park
    pooled_all: list[float] = field(default_factory=list)  # prepare with pool_clean = "all"
    cache_found: int = 0  # pooled gaps that found the previous gap's build cache

    @property
    def ratio(self) -> float:
        return statistics.median(self.pooled_prepare) / statistics.median(self.fresh_add)


def measure_workspaces(repo: Path, repeat: int = REPEAT, files: int = FILES) -> WorkspaceResult:
    """Gap after gap in ``repo``, ``main`` moving on between them, and for each the steps in
    turn (this VM's speed drifts: taking turns keeps the comparison fair): a fresh
    ``git worktree add``, the gap with chump and no pool, the gap through a warm pool of one.
    Then ``repeat`` gaps more through the pool with ``pool_clean = "all"``."""
    result = WorkspaceResult(files, repeat)
    trees = repo / ".chump" / "worktrees"
    trees.mkdir(parents=True, exist_ok=True)
    fresh = GitWorktrees(repo, BOT)
    pooled = PooledWorktrees(repo, BOT, size=1, warn=_refuse)
    _gap(pooled, trees, "warm-up", 0, git(repo, "rev-parse", "main"))  # parks the first one
    for i in range(1, repeat + 1):
        base = advance_base(repo, version=i, files=files)
        raw = str(trees / f"raw-{i}")
        took, _ = _timed(partial(git, repo, "worktree", "add", "-q", "-b", f"raw/{i}", raw))
        result.fresh_add.append(took)
        git(repo, "worktree", "remove", "--force", raw)
        prepare_s, teardown_s, _ = _gap(fresh, trees, f"fresh-{i}", i, base)
        result.fresh_prepare.append(prepare_s)
        result.fresh_teardown.append(teardown_s)
        prepare_s, teardown_s, found = _gap(pooled, trees, f"pooled-{i}", i, base)
        result.pooled_prepare.append(prepare_s)
        result.pooled_teardown.append(teardown_s)
        result.cache_found += found
    everything = PooledWorktrees(repo, BOT, size=1, clean="all", warn=_refuse)
    for i in range(1, repeat + 1):
        base = advance_base(repo, version=1000 + i, files=files)
        prepare_s, _, _ = _gap(everything, trees, f"all-{i}", 1000 + i, base)
        result.pooled_all.append(prepare_s)
    return result


def _gap(
    ws: GitWorktrees, trees: Path, slug: str, gap: int, base: str
) -> tuple[float, float, bool]:
    """One gap: prepare (timed), checked out at ``base`` and clean; the agent's work; teardown
    (timed). Whether it found the build cache gap ``gap - 1`` left."""
    prepare_s, prepared = _timed(partial(ws.prepare, trees / slug, f"chump/{slug}", "main"))
    tree = prepared.worktree
    assert prepared.pooled == (isinstance(ws, PooledWorktrees) and gap > 0), prepared
    assert git(tree, "rev-parse", "HEAD") == base
    assert git(tree, "status", "--porcelain") == ""
    built = tree / "node_modules" / "built-by"
    found = built.exists() and built.read_text() == str(gap - 1)
    agent_work(tree, gap)
    teardown_s, problem = _timed(partial(ws.remove, tree, "save"))
    assert problem == "", problem
    return prepare_s, teardown_s, found


def _refuse(message: str) -> None:
    raise AssertionError(f"the pool warned: {message}")


def workspaces_section(results: dict[str, WorkspaceResult]) -> str:
    """The section: one pair of columns per storage the repository lived on; the target is
    judged on the first (a disk, where repositories live)."""
    first = next(iter(results.values()))
    judged = next(iter(results))
    rows = [
        ("fresh `git worktree add -b` (git alone)", "fresh_add"),
        ("fresh prepare, no pool (`GitWorktrees`)", "fresh_prepare"),
        ('**pooled prepare**, `pool_clean = "tracked"`', "pooled_prepare"),
        ('pooled prepare, `pool_clean = "all"` (cache deleted)', "pooled_all"),
        ("teardown, no pool: save work + `git worktree remove`", "fresh_teardown"),
        ("teardown, pooled: save work + park", "pooled_teardown"),
    ]
    head = "| step | " + " | ".join(f"{name}: median (min-max) | / fresh add" for name in results)
    table = [head + " |", "|---|" + "---|---|" * len(results)]
    for title, name in rows:
        cells = []
        for result in results.values():
            samples: list[float] = getattr(result, name)
            ratio = statistics.median(samples) / statistics.median(result.fresh_add)
            shown = f"**{ratio:.2f}**" if name == "pooled_prepare" else f"{ratio:.2f}"
            cells.append(f"{_stats(samples)} | {shown}")
        table.append(f"| {title} | " + " | ".join(cells) + " |")
    met = "met" if first.ratio <= TARGET_RATIO else "NOT met"
    fastest = statistics.median(first.pooled_prepare) / min(first.fresh_add)
    found = ", ".join(f"{r.cache_found} of {r.repeat} ({name})" for name, r in results.items())
    return (
        f"A repository of {first.files:,} small files (two folder levels of {FANOUT}, made with "
        "`git fast-import`). Each gap's stand-in agent changes 3 tracked files, leaves an "
        f"untracked one and a `node_modules/` build cache of {CACHE_FILES:,} files (ignored); "
        "between gaps `main` moves on by 20 changed files. Pooled rows: `worktree_pool = 1`, "
        "each prepare takes the previous gap's parked worktree (`git status`, check-out of the "
        "new branch at the new base, move). Gap after gap, the steps take turns (this VM's "
        f"speed drifts); {first.repeat} gaps per row, seconds. Target, on the {judged}: a "
        f"pooled prepare <= {TARGET_RATIO:.0%} of a fresh `git worktree add` ({met}: "
        f"**{first.ratio:.2f}**), and each gap finds the build cache the previous one left: "
        f"**{found}**. The {judged} is shared with other work: fresh adds there took "
        f"{min(first.fresh_add):.1f}-{max(first.fresh_add):.1f} s; against the fastest of them "
        f"a pooled prepare is {fastest:.2f}. In memory (tmpfs) creating files costs next to "
        "nothing, which is the "
        f"pool's worst case: what remains of a pooled prepare is reading the {first.files:,} "
        "files' state (`git status`, the check-out's index refresh), which a fresh worktree "
        "does not need.\n\n" + "\n".join(table)
    )


@contextmanager
def large_repo(files: int = FILES, where: str | None = None) -> Iterator[Path]:
    """A fresh ``make_repo`` in a temporary folder (in ``where``), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="chump-bench-large-", dir=where))
    try:
        repo = folder / "repo"
        took, _ = _timed(partial(make_repo, repo, files))
        print(f"made a repository of {files:,} files in {where or 'the temp dir'} in {took:.1f} s")
        yield repo
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=FILES)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    parser.add_argument("--no-memory", action="store_true", help="skip the run on tmpfs")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = parser.parse_args()
    storages: dict[str, str | None] = {"disk": None}
    if not args.no_memory and Path(MEMORY).is_dir():
        storages["tmpfs"] = MEMORY
    results = {}
    for name, where in storages.items():
        with large_repo(args.files, where) as repo:
            results[name] = measure_workspaces(repo, args.repeat, args.files)
    body = workspaces_section(results)
    print(body)
    if not args.no_write:
        record("large_repo", f"A dispatch's workspace in a {args.files:,}-file repository", body)
    disk = results["disk"]
    return 0 if disk.ratio <= TARGET_RATIO and disk.cache_found == disk.repeat else 1


if __name__ == "__main__":
    sys.exit(main())
