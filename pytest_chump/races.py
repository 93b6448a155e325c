"""Detects gaps that became ``done`` on the base branch by another change (a race lost).

Reads the backlog as committed on the base ref (``git show <base>:<path>``) — the loop calls
this after the PR provider polled (and, for the git provider, fetched).
"""

from __future__ import annotations

from pathlib import Path

from pytest_chump.backlog import check_bytes
from pytest_chump.proc import run


def done_on_base(repo_root: Path, base_ref: str, backlog: Path) -> frozenset[str]:
    """Ids whose status is ``done`` in the base ref's copy of the backlog (empty if unknown)."""
    try:
        relative = backlog.resolve().relative_to(repo_root.resolve())
    except ValueError:
        return frozenset()  # the backlog is not part of the repository
    proc = run(["git", "show", f"{base_ref}:{relative.as_posix()}"], cwd=repo_root, check=False)
    if proc.returncode != 0:
        return frozenset()
    gaps, problems = check_bytes(proc.stdout.encode(), f"{base_ref}:{relative}")
    if problems:
        return frozenset()  # a broken backlog on the base says nothing reliable
    return frozenset(g.id for g in gaps if g.status == "done")
