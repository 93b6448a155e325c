"""Where an agent works: a git worktree on its own branch (always, for real dispatches; taken
from a warm pool of finished ones with ``worktree_pool``), or nothing at all (the in-process
self-test, whose fake agent needs no checkout and which must run anywhere, even without git).

All satisfy one small interface, so the dispatcher and the finisher are the same code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from pytest_chump.core import remote_refs
from pytest_chump.core.config import Settings
from pytest_chump.core.errors import ChumpError, UsageError
from pytest_chump.core.run import run
from pytest_chump.dispatch import pool, worktrees
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
            return worktrees.remove(self.repo_root, worktree, message=message, env=self.env())

    def head(self, worktree: Path) -> str:
        return run(["git", "rev-parse", "HEAD"], cwd=worktree).stdout.strip()

    def env(self) -> dict[str, str] | None:
        """The environment of commits chump makes (saved work): the bot's identity."""
        return {**os.environ, **self.identity} if self.identity else None


class PooledWorktrees(GitWorktrees):
    """``GitWorktrees`` with a warm pool of at most ``size`` finished worktrees
    (``dispatch/pool.py``): teardown saves the work and parks the worktree while the pool has
    room (else removes it); prepare takes a parked one to the new branch, cleaned (``clean``:
    ``tracked`` keeps git-ignored build caches, ``all`` drops them too), before it creates one.
    """

    def __init__(
        self,
        repo_root: Path,
        identity: Mapping[str, str] | None = None,
        *,
        size: int,
        clean: str = "tracked",
        warn: Callable[[str], None] = print,
    ) -> None:
        super().__init__(repo_root, identity)
        self.size = size
        self.clean_all = clean == "all"
        self.warn = warn  # a parked worktree not reused, and why

    def prepare(self, worktree: Path, branch: str, base_ref: str) -> Prepared:
        with repo_lock(self.repo_root):
            taken = pool.take(
                self.repo_root,
                worktree,
                branch,
                base_ref,
                clean_all=self.clean_all,
                env=self.env(),
                warn=self.warn,
            )
            return taken or worktrees.prepare(self.repo_root, worktree, branch, base_ref)

    def rollback(self, prepared: Prepared) -> None:
        if not prepared.pooled:
            super().rollback(prepared)
            return
        with repo_lock(self.repo_root):
            pool.give_back(self.repo_root, prepared, self.size)

    def remove(self, worktree: Path, message: str) -> str:
        park = pool.parker(self.repo_root, self.size)
        with repo_lock(self.repo_root):
            return worktrees.remove(
                self.repo_root, worktree, message=message, env=self.env(), park=park
            )


def git_workspaces(settings: Settings, warn: Callable[[str], None] = print) -> GitWorktrees:
    """The workspaces of real dispatches: pooled when ``worktree_pool`` is above 0."""
    root = settings.repo_root
    if settings.worktree_pool <= 0:
        return GitWorktrees(root, settings.bot_identity)
    if settings.worktree_dir.resolve() == pool.pool_dir(root).resolve():
        raise UsageError(
            f"worktree_root: {settings.worktree_root} is where the worktree pool parks "
            "worktrees; choose another folder"
        )
    return PooledWorktrees(
        root,
        settings.bot_identity,
        size=settings.worktree_pool,
        clean=settings.pool_clean,
        warn=warn,
    )


class RemoteWorkspaces:
    """No local checkout for an agent that makes its own elsewhere (a Ray node): only the
    branch's name and the base commit it starts from, resolved here (a SHA, never a path)."""

    def __init__(self, repo_root: Path) -> None:
        self.repo_root = repo_root

    def prepare(self, worktree: Path, branch: str, base_ref: str) -> Prepared:
        start = remote_refs.resolve(self.repo_root, base_ref)
        if not start:
            raise ChumpError(f"base ref {base_ref!r} names no commit (fetch it, or set base_ref)")
        return Prepared(worktree, branch, False, False, "", start=start)

    def rollback(self, prepared: Prepared) -> None:
        """Nothing was created here."""

    def remove(self, worktree: Path, message: str) -> str:
        """The node removed its worktree (after saving and pushing the work)."""
        return ""

    def head(self, worktree: Path) -> str:
        return ""


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
