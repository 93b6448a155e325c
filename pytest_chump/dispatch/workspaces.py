"""Where an agent works: a git worktree on its own branch (always, for real dispatches), or
nothing at all (the in-process self-test, whose fake agent needs no checkout and which must
run anywhere, even without git).

Both satisfy one small interface, so the dispatcher and the finisher are the same code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from pytest_chump.core.run import run
from pytest_chump.dispatch import worktrees
from pytest_chump.dispatch.worktrees import Prepared
from pytest_chump.state.locks import repo_lock


class Workspaces(Protocol):
    def prepare(self, worktree: Path, branch: str, base_ref: str) -> Prepared:
        """Make ``worktree`` ready for an agent on ``branch``; ChumpError when it cannot."""

    def rollback(self, prepared: Prepared) -> None:
        """Undo ``prepare`` after a later dispatch step failed."""

    def remove(self, worktree: Path, message: str) -> str:
        """Tear down a finished workspace without losing work; "" or why it was kept."""

    def head(self, worktree: Path) -> str:
        """The commit the workspace is at ("" when it has none)."""


class GitWorktrees:
    """The real thing: ``git worktree add -b <branch>`` under the repository.

    Adding, pruning and removing worktrees are serialized across processes (two
    orchestrators on one repository): git's own locking leaves a window in which one
    process's ``worktree prune`` deletes another's half-created worktree.
    """

    def __init__(self, repo_root: Path, identity: Mapping[str, str] | None = None) -> None:
        self.repo_root = repo_root
        self.identity = dict(identity or {})  # who commits work saved before a removal

    def prepare(self, worktree: Path, branch: str, base_ref: str) -> Prepared:
        with repo_lock(self.repo_root):
            return worktrees.prepare(self.repo_root, worktree, branch, base_ref)

    def rollback(self, prepared: Prepared) -> None:
        with repo_lock(self.repo_root):
            worktrees.rollback(self.repo_root, prepared)

    def remove(self, worktree: Path, message: str) -> str:
        with repo_lock(self.repo_root):
            env = {**os.environ, **self.identity} if self.identity else None
            return worktrees.remove(self.repo_root, worktree, message=message, env=env)

    def head(self, worktree: Path) -> str:
        return run(["git", "rev-parse", "HEAD"], cwd=worktree).stdout.strip()


class NoWorkspaces:
    """No checkout: the path is only a name. For the in-process self-test only."""

    def prepare(self, worktree: Path, branch: str, base_ref: str) -> Prepared:
        return Prepared(worktree, branch, False, False, "")

    def rollback(self, prepared: Prepared) -> None:
        """Nothing was created."""

    def remove(self, worktree: Path, message: str) -> str:
        return ""

    def head(self, worktree: Path) -> str:
        return ""
