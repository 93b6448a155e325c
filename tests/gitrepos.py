"""Real git repositories for tests: a bare origin plus a clone, and process/fd leak probes.

Uses the git CLI directly (argv lists); the autouse conftest fixture isolates config and identity.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest


def git(cwd: Path, *args: str) -> str:
    """Run ``git <args>`` in ``cwd`` and return its stdout without surrounding whitespace."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return proc.stdout.strip()


def make_origin(tmp_path: Path) -> tuple[Path, Path]:
    """A bare ``origin.git`` on ``main`` and a clone ``work`` with one commit pushed to it."""
    origin, clone = tmp_path / "origin.git", tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(origin))
    git(tmp_path, "clone", "--quiet", str(origin), str(clone))
    git(clone, "symbolic-ref", "HEAD", "refs/heads/main")
    (clone / "README").write_text("work\n", encoding="utf-8")
    (clone / "docs").mkdir()
    (clone / "docs" / "gaps.yaml").write_text("gaps: []\n", encoding="utf-8")
    git(clone, "add", "README", "docs/gaps.yaml")
    git(clone, "commit", "--quiet", "-m", "initial")
    git(clone, "push", "--quiet", "-u", "origin", "main")
    git(clone, "fetch", "--quiet", "origin")
    return origin, clone


@pytest.fixture
def origin_clone(tmp_path: Path) -> tuple[Path, Path]:
    """(origin, clone) made by :func:`make_origin` in this test's tmp dir."""
    return make_origin(tmp_path)


def open_fds() -> int:
    """How many file descriptors this process has open, once garbage no longer holds any
    (files an earlier test dropped without closing are closed by the collector, at a moment
    that would otherwise fall in the middle of a measurement)."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def child_pids() -> set[int]:
    """Pids whose parent is this process, zombies included (an unreaped child is a leak too).

    Processes that exit and are reaped while /proc is being scanned are skipped.
    """
    me, children = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:  # gone (reaped) between listdir and read
            continue
        fields = stat.rpartition(")")[2].split()  # the command name may contain spaces
        if int(fields[1]) == me:
            children.add(int(entry))
    return children


# --- a repository with six gaps and a scripted agent that lands each on origin/main ----------

AGENT = Path(__file__).parent / "agent_scripts" / "ship.py"

SIX_GAPS = """\
gaps:
  - {id: E2E-A, title: base, priority: P1, effort: s}
  - {id: E2E-B, title: needs A, priority: P1, effort: s, depends_on: [E2E-A]}
  - {id: E2E-C, title: needs A, priority: P1, effort: s, depends_on: [E2E-A]}
  - {id: E2E-D, title: needs B and C, priority: P2, effort: s, depends_on: [E2E-B, E2E-C]}
  - {id: E2E-E, title: alone, priority: P2, effort: s}
  - {id: E2E-F, title: needs E, priority: P2, effort: s, depends_on: [E2E-E]}
"""

PYPROJECT = f"""\
[tool.chump]
spawner = "script"
pr_provider = "git"
max_parallel = 2
poll_interval = "50ms"
exit_grace = "20s"

[tool.chump.spawners.script]
command = ["{sys.executable}", "{AGENT}"]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _, clone = make_origin(tmp_path)
    (clone / "docs/gaps.yaml").write_text(SIX_GAPS)
    (clone / "pyproject.toml").write_text(PYPROJECT)
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "backlog")
    git(clone, "push", "--quiet", "origin", "main")
    git(clone, "fetch", "--quiet", "origin")
    return clone
