"""Processes each PR provider starts per poll with 1, 8 and 64 branches in flight, and wall time.

Target for ``github``: one ``gh`` call per poll whatever the number of branches (measured
against a fake ``gh`` answering like ``gh api graphql``). ``git`` is reported as it is: every
git process of a poll is counted by wrapping ``subprocess.Popen``.
Run: ``.venv/bin/python -m benchmarks.bench_providers [--repeat R] [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks.report import record
from pytest_chump.core.protocols import Watch
from pytest_chump.providers import github_query
from pytest_chump.providers.git import GitProvider
from pytest_chump.providers.github import GithubProvider

COUNTS = (1, 8, 64)
TARGET_GH_CALLS = 1
FAKE_GH = """
import json, sys
rest = sys.argv[3:]
names = [rest[i + 1].split("=", 1)[0] for i in range(0, len(rest), 2)]
check = {"__typename": "CheckRun", "name": "unit", "status": "COMPLETED", "conclusion": "SUCCESS"}
rollup = {"state": "SUCCESS", "contexts": {"nodes": [check, check, check]}}
pr = {"number": 1, "state": "OPEN", "mergeStateStatus": "CLEAN", "headRefName": "x",
      "commits": {"nodes": [{"commit": {"statusCheckRollup": rollup}}]}}
data = {n: {"nodes": []} for n in names if n[0] == "s" and n[1:].isdigit()}
data["repository"] = {n: {"nodes": [pr]} for n in names if n[0] == "b" and n[1:].isdigit()}
print(json.dumps({"data": data}))
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@contextmanager
def counting_processes() -> Iterator[Counter[str]]:
    """Count every process started (``program subcommand``) while the block runs."""
    seen: Counter[str] = Counter()
    original = subprocess.Popen

    class Counted(original):  # type: ignore[valid-type,misc]
        def __init__(self, args: Sequence[str], *rest: object, **kw: object) -> None:
            sub = next((a for a in args[1:] if not a.startswith("-")), "")
            seen[f"{Path(args[0]).name} {sub}".strip()] += 1
            super().__init__(args, *rest, **kw)

    subprocess.Popen = Counted  # type: ignore[misc,assignment]
    try:
        yield seen
    finally:
        subprocess.Popen = original  # type: ignore[misc]


def measure(poll: Callable[[], object], repeat: int) -> tuple[list[Counter[str]], float]:
    """Processes of each of ``repeat`` polls, and their median wall time (ms)."""
    times, polls = [], []
    for _ in range(repeat):
        with counting_processes() as seen:
            start = time.perf_counter()
            poll()
            times.append((time.perf_counter() - start) * 1000)
        polls.append(seen)
    return polls, statistics.median(times)


def fake_gh(folder: Path) -> str:
    path = folder / "gh"
    path.write_text(f"#!{sys.executable} -S\n{FAKE_GH}", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


def git_repo(folder: Path, count: int) -> tuple[Path, str]:
    """A clone whose origin has ``count`` pushed, unmerged branches; (clone, base sha)."""
    origin, clone = folder / "origin.git", folder / "clone"
    git(folder, "init", "-q", "--bare", "-b", "main", str(origin))
    git(folder, "clone", "-q", str(origin), str(clone))
    git(clone, "symbolic-ref", "HEAD", "refs/heads/main")
    git(clone, "commit", "-q", "--allow-empty", "-m", "base")
    base = git(clone, "rev-parse", "HEAD")
    for i in range(count):
        sha = git(clone, "commit-tree", "HEAD^{tree}", "-p", base, "-m", f"gap {i}")
        git(clone, "update-ref", f"refs/heads/chump/gap-{i}", sha)
    git(clone, "push", "-q", "origin", "main", "refs/heads/chump/*:refs/heads/chump/*")
    return clone, base


def watches(count: int, base_sha: str = "") -> list[Watch]:
    return [Watch(f"chump/gap-{i}", f"G-{i}", base_sha) for i in range(count)]


def bench_github(folder: Path, count: int, repeat: int) -> str:
    made = GithubProvider(folder, fake_gh(folder), "main", repo="acme/widgets")
    polls, ms = measure(lambda: made.poll(watches(count)), repeat)
    size = len(github_query.query_text(count)) / 1000
    note = f"{breakdown(polls[-1])} (query {size:.1f} kB)"
    return row("github", count, polls, note, ms, f"{made.calls / repeat:g}")


def bench_git(folder: Path, count: int, repeat: int) -> str:
    clone, base = git_repo(folder, count)
    made = GitProvider(clone, "origin/main")
    polls, ms = measure(lambda: made.poll(watches(count, base)), repeat)
    note = breakdown(polls[-1])
    if polls[0] != polls[-1]:
        note += f"; first poll: {breakdown(polls[0])}"
    return row("git", count, polls, note, ms, "n/a")


def breakdown(seen: Counter[str]) -> str:
    return " + ".join(f"{n} {name}" for name, n in sorted(seen.items(), key=lambda kv: -kv[1]))


def row(name: str, count: int, polls: list[Counter[str]], note: str, ms: float, gh: str) -> str:
    """A table row: processes of the last poll (and of the first, when it differs)."""
    first, last = (sum(seen.values()) for seen in (polls[0], polls[-1]))
    processes = f"**{last}**" + (f" (first: {first})" if first != last else "")
    line = f"| {name} | {count} | {processes} | {gh} | {note} | {ms:.1f} |"
    print(line)
    return line


def isolate_git() -> None:
    os.environ.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    for role in ("AUTHOR", "COMMITTER"):
        os.environ[f"GIT_{role}_NAME"] = "Bench"
        os.environ[f"GIT_{role}_EMAIL"] = "bench@example.invalid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    isolate_git()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in COUNTS:
            for bench in (bench_github, bench_git):
                folder = Path(tmp) / f"{bench.__name__}-{count}"
                folder.mkdir()
                rows.append(bench(folder, count, args.repeat))
    body = report(rows, args.repeat)
    if not args.no_write:
        record("providers", "PR provider calls per poll", body)
    print(body)


def report(rows: list[str], repeat: int) -> str:
    return (
        "Processes started by one `poll()` with N branches in flight, in the last of "
        f"{repeat} polls (the first poll too when it differs: caches warm up); wall time is "
        f"the median of the {repeat}. Target: the `github` provider makes {TARGET_GH_CALLS} "
        "`gh` call per poll whatever N. Its `gh` here is a fake (a Python script answering "
        "like `gh api graphql`, 3 check runs per PR), so its time is process start + query "
        "build + parse; a real `gh` adds one GitHub round trip, still one per poll. The `git` "
        "provider is offline: one fetch and one listing of every branch tip per poll; "
        "ancestry and patch-id checks only for tips it has not seen (all branches pushed, "
        "none merged), every git process counted.\n\n"
        "| provider | N | processes per poll | `calls` (gh) per poll | breakdown | ms per poll |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows)
    )


if __name__ == "__main__":
    main()
