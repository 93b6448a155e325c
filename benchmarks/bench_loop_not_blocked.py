"""Dispatch never blocks the loop, measured in a repository of 20,000 files.

Two gaps start together: QUICK's agent commits, pushes its work to ``origin/main`` and exits;
SLOW's worktree takes a full ``git worktree add`` of 20,000 files (the repository lock makes it
wait for QUICK's first). Measured: from QUICK's agent exit to its outcome being recorded, with
the worktrees made on the loop thread (``dispatch_workers = 0``: the outcome waits for SLOW's
worktree) and by the workers (default 2: it is recorded within one poll), for two providers:

- ``merged-on-exit`` reports MERGED once the agent exited: the loop alone, no forge;
- ``git`` with the remote ``origin`` (a bare clone): each poll fetches on the loop thread
  while a worker holds the repository lock for SLOW's worktree; it sees QUICK's push.

The poll interval is 0.5 s.

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


def measure(repo: Path, provider: str, workers: int) -> tuple[float, float]:
    """(QUICK's exit -> its outcome recorded, seconds of the whole run)."""
    app = App.create({"repo_root": str(repo), "dispatch_workers": workers, "pr_provider": provider})
    if provider == "merged-on-exit":
        app.pm.register(MergedOnExit())
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
    assert quick.outcome == "shipped", out.getvalue()
    return quick.ended_at - exited, took


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
                latency, took = measure(repo, provider, workers)
                rows.append((provider, workers, latency, took))
                print(provider, workers, round(latency, 2), round(took, 1), flush=True)
    body = (
        f"A repository of {args.files:,} files; QUICK's agent pushes its work to `origin/main` "
        "and exits while SLOW's worktree is created. Poll interval "
        f"{POLL_S:g} s. `merged-on-exit`: a provider reporting MERGED once the agent exited (the "
        "loop alone); `git`: the git provider with a remote, whose poll fetches on the loop "
        "thread while a worker holds the repository lock for SLOW's worktree.\n\n"
        "| provider | worktrees made | QUICK's exit -> outcome recorded | whole run |\n"
        "|---|---|---|---|\n"
        + "".join(
            f"| `{p}` "
            f"| {'on the loop thread (`dispatch_workers = 0`)' if w == 0 else f'by {w} workers'} "
            f"| **{lat:.2f} s** | {took:.1f} s |\n"
            for p, w, lat, took in rows
        )
        + f"\nTarget: with workers, within one poll ({POLL_S:g} s), for both providers.\n"
    )
    print(body)
    if not args.no_write:
        record("loop_not_blocked", "Dispatch never blocks the loop (20,000-file repository)", body)


if __name__ == "__main__":
    main()
