"""Dispatch never blocks the loop, measured in a repository of 20,000 files.

Two gaps start together: QUICK's agent commits, pushes its work to ``origin/main`` and exits;
SLOW's worktree takes a full ``git worktree add`` of 20,000 files (the repository lock makes it
wait for QUICK's first). Measured: from QUICK's agent exit to its outcome being recorded, with
the worktrees made on the loop thread (``dispatch_workers = 0``: the outcome waits for SLOW's
worktree) and by the workers (default 2: it is recorded within one poll), for two providers:

- ``merged-on-exit`` reports MERGED once the agent exited: the loop alone, no forge;
- ``git`` with the remote ``origin`` (a bare clone): each poll fetches on the loop thread
  while a worker holds the repository lock for SLOW's worktree; it sees QUICK's push.

The poll interval is 0.5 s. The premise is checked, not assumed: SLOW's ``git worktree add``
is timed (inside the repository lock) and the benchmark fails unless QUICK's agent exited
while it ran; the section shows where in that window the exit fell, so the rows on the loop
thread are seen to wait for the rest of the add and the rows with workers not to.

Run: ``.venv/bin/python -m benchmarks.bench_loop_not_blocked [--files N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench_large_repo import FILES, large_repo
from benchmarks.bench_refill import MergedOnExit
from benchmarks.report import record, verdict
from pytest_chump.dispatch import worktrees
from pytest_chump.dispatch.workspaces import GitWorktrees
from pytest_chump.dispatch.worktrees import Prepared
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.state.locks import repo_lock
from pytest_chump.state.store import Store

POLL_S = 0.5
AGENT = """\
import os, subprocess, time
def git(*args):
    return subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@x", *args],
                          capture_output=True).returncode
gap = os.environ["CHUMP_GAP_ID"]
with open(gap + ".txt", "w") as fh:
    fh.write("done\\n")
git("add", gap + ".txt")
git("commit", "-q", "-m", gap)
for _ in range(20):  # another agent may have pushed first
    if git("push", "-q", "origin", "HEAD:main") == 0:
        break
    git("pull", "-q", "--rebase", "origin", "main")
print("exit-at", time.time(), flush=True)
"""
PROVIDERS = ("merged-on-exit", "git")
SLOW_BRANCH = "chump/slow-1"


class TimedWorktrees(GitWorktrees):
    """``GitWorktrees`` that records, per branch, the wall-clock window (``time.time()``, the
    clock of the agents' ``exit-at`` lines and of ``ended_at``) in which its worktree was made:
    from taking the repository lock to the end of ``git worktree add``, so waiting for the
    lock is not counted as making the worktree."""

    def __init__(self, repo_root: Path, identity: dict[str, str] | None = None) -> None:
        super().__init__(repo_root, identity)
        self.windows: dict[str, tuple[float, float]] = {}
        self.quick_made = threading.Event()

    def prepare(self, worktree: Path, branch: str, base_ref: str) -> Prepared:
        if branch == SLOW_BRANCH:  # on two workers both start at once: QUICK's add goes first
            self.quick_made.wait(timeout=600)
        with repo_lock(self.repo_root):
            start = time.time()
            try:
                return worktrees.prepare(self.repo_root, worktree, branch, base_ref)
            finally:
                self.windows[branch] = (start, time.time())
                if branch != SLOW_BRANCH:
                    self.quick_made.set()


@dataclass(frozen=True)
class Row:
    """One run: QUICK's exit -> outcome latency, the whole run, and where QUICK's exit fell
    in SLOW's worktree add (seconds into it, and the add's length)."""

    provider: str
    workers: int
    latency: float
    took: float
    exit_into_add: float
    add: float

    @property
    def add_left(self) -> float:
        """Seconds of SLOW's add still to go when QUICK exited: what a blocked loop waits."""
        return self.add - self.exit_into_add


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@x", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def configure(repo: Path) -> str:
    """The backlog and settings committed on ``main`` (keeping its 20,000 files: the main work
    tree is not checked out, so only these two files are added), ``origin`` a bare clone;
    the commit ``main`` is at."""
    (repo / "docs").mkdir(exist_ok=True)
    (repo / "docs/gaps.yaml").write_text(
        "gaps:\n  - {id: QUICK-1, priority: P0, effort: s}\n"
        "  - {id: SLOW-1, priority: P1, effort: s}\n"
    )
    (repo / "pyproject.toml").write_text(
        f"""[tool.chump]
spawner = "script"
base_ref = "origin/main"
max_parallel = 2
poll_interval = "{POLL_S}s"

[tool.chump.spawners.script]
command = ["{sys.executable}", "-c", {json.dumps(AGENT)}]
"""
    )
    git(repo, "read-tree", "main")  # the index of main's tree, no files written
    git(repo, "add", "docs/gaps.yaml", "pyproject.toml")
    git(repo, "commit", "-q", "-m", "backlog")
    origin = repo.parent / "origin.git"
    git(repo.parent, "clone", "-q", "--bare", str(repo), str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "fetch", "-q", "origin")
    return git(repo, "rev-parse", "main")


def reset(repo: Path, start: str) -> None:
    """Back to the state before a run: no state, no branches, worktrees or fetched refs of
    chump's (its copy of ``origin/main`` would be newer than the user's), origin's ``main``
    without the agents' pushes."""
    shutil.rmtree(repo / ".chump", ignore_errors=True)
    git(repo, "worktree", "prune")
    for ref in git(repo, "for-each-ref", "--format=%(refname)", "refs/chump/").split():
        git(repo, "update-ref", "-d", ref)
    for branch in ("chump/quick-1", "chump/slow-1"):
        subprocess.run(["git", "branch", "-D", branch], cwd=repo, capture_output=True)
    git(repo, "push", "-q", "-f", "origin", f"{start}:main")
    git(repo, "fetch", "-q", "origin")


def measure(repo: Path, provider: str, workers: int) -> Row:
    """One run of both gaps; fails (AssertionError) unless QUICK shipped and its agent exited
    while SLOW's worktree was being made (else the row would measure nothing: no blocking
    to avoid)."""
    app = App.create({"repo_root": str(repo), "dispatch_workers": workers, "pr_provider": provider})
    if provider == "merged-on-exit":
        app.pm.register(MergedOnExit())
    out = io.StringIO()
    timed = TimedWorktrees(app.settings.repo_root, app.settings.bot_identity)
    start = time.perf_counter()
    with Store.for_repo(repo) as store:
        progress = Progress(out, out)
        orch = Orchestrator(app, store, app.spawner_factory(), app.provider(), progress,
                            workspaces=timed)  # fmt: skip
        orch.run()
        (quick,) = store.dispatches("gap_id = 'QUICK-1'")
    took = time.perf_counter() - start
    log = Path(quick.log_path or "")
    exited = max(float(line.split()[1]) for line in log.read_text().splitlines()
                 if line.startswith("exit-at"))  # fmt: skip
    assert quick.ended_at is not None, out.getvalue()
    assert quick.outcome == "shipped", out.getvalue()
    assert SLOW_BRANCH in timed.windows, f"SLOW's worktree was never made:\n{out.getvalue()}"
    add_start, add_end = timed.windows[SLOW_BRANCH]
    if not add_start < exited < add_end:
        raise AssertionError(
            f"premise not met ({provider}, {workers} workers): QUICK's agent exited "
            f"{exited - add_start:+.2f} s from the start of SLOW's {add_end - add_start:.2f} s "
            "worktree add, not during it, so nothing could block its outcome; use a larger "
            "--files"
        )
    return Row(provider, workers, quick.ended_at - exited, took, exited - add_start,
               add_end - add_start)  # fmt: skip


def section(rows: list[Row], files: int) -> str:
    """The BENCHMARKS.md section: each row with SLOW's add window, and the target's verdict."""
    with_workers = [r for r in rows if r.workers > 0]
    met = verdict(max(r.latency for r in with_workers), POLL_S) if with_workers else "not run"
    return (
        f"A repository of {files:,} files; QUICK's agent pushes its work to `origin/main` "
        "and exits while SLOW's worktree is created. Poll interval "
        f"{POLL_S:g} s. `merged-on-exit`: a provider reporting MERGED once the agent exited (the "
        "loop alone); `git`: the git provider with a remote, whose poll fetches on the loop "
        "thread while a worker holds the repository lock for SLOW's worktree.\n\n"
        "The premise is checked on every row (the benchmark fails otherwise): QUICK's agent "
        "exited during SLOW's `git worktree add` (timed from taking the repository lock to the "
        "add's end). A loop that makes worktrees on its own thread cannot record QUICK's "
        "outcome before that add ends, so its latency is at least the add still to go; with "
        "workers it should be within a poll whatever was left of the add.\n\n"
        "| provider | worktrees made | SLOW's add | QUICK exited into it | add still to go "
        "| QUICK's exit -> outcome recorded | whole run |\n"
        "|---|---|---|---|---|---|---|\n"
        + "".join(
            f"| `{r.provider}` "
            f"| {'on the loop thread (`dispatch_workers = 0`)' if r.workers == 0 else f'by {r.workers} workers'} "  # noqa: E501
            f"| {r.add:.2f} s | {r.exit_into_add:.2f} s | {r.add_left:.2f} s "
            f"| **{r.latency:.2f} s** | {r.took:.1f} s |\n"
            for r in rows
        )
        + f"\nTarget: with workers, within one poll ({POLL_S:g} s), for both providers: "
        f"**{met}**.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=FILES)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = parser.parse_args()
    rows = []
    with large_repo(args.files) as repo:
        start = configure(repo)
        for provider in PROVIDERS:
            for workers in (0, 2):
                reset(repo, start)
                row = measure(repo, provider, workers)
                rows.append(row)
                print(provider, workers, f"latency {row.latency:.2f} s, add {row.add:.2f} s, "
                      f"exit {row.exit_into_add:.2f} s into it", flush=True)  # fmt: skip
    body = section(rows, args.files)
    print(body)
    if not args.no_write:
        title = f"Dispatch never blocks the loop ({args.files:,}-file repository)"
        record("loop_not_blocked", title, body)


if __name__ == "__main__":
    main()
