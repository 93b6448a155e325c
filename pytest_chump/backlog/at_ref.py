"""The backlog as committed at a ref (``git show <ref>:<path>``), not as in the work tree.

Used where the commit is what matters: the pre-push hook validates what is pushed, and the
loop sees a gap that became ``done`` on the base by another change (a race lost).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_chump.backlog import check_bytes
from pytest_chump.core.model import Gap
from pytest_chump.core.run import clean_env


def backlog_at(repo_root: Path, ref: str, backlog: Path) -> tuple[list[Gap], list[str]] | None:
    """(gaps, problems) of ``backlog`` as committed at ``ref``; None when it is not there
    (not in that commit, or not inside the repository at all)."""
    try:
        relative = backlog.resolve().relative_to(repo_root.resolve()).as_posix()
    except ValueError:
        return None
    proc = subprocess.run(
        ["git", "show", f"{ref}:{relative}"],
        cwd=repo_root,
        env=clean_env(),
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        return None
    return check_bytes(proc.stdout, relative)  # path:line: stays parseable


def done_on_base(repo_root: Path, base_ref: str, backlog: Path) -> frozenset[str]:
    """Ids whose status is ``done`` in the base ref's copy of the backlog (empty if unknown)."""
    found = backlog_at(repo_root, base_ref, backlog)
    if found is None or found[1]:
        return frozenset()  # absent, or broken on the base: it says nothing reliable
    return frozenset(g.id for g in found[0] if g.status == "done")
