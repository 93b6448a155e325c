"""Real git repositories for tests: a bare origin plus a clone, and process/fd leak probes.

Uses the git CLI directly (argv lists); the autouse conftest fixture isolates config and identity.
"""

from __future__ import annotations

import os
import subprocess
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
    """How many file descriptors this process has open."""
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
