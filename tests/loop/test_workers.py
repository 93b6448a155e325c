"""Dispatch never blocks the loop: while a worker creates one gap's worktree (slow in a large
repository), the loop records another agent's outcome — whether that agent started before
the slow one or after it."""

from __future__ import annotations

import io
import sqlite3
from concurrent.futures import Future
from pathlib import Path

from pytest_chump.dispatch import worktrees
from pytest_chump.dispatch.workspaces import GitWorktrees
from pytest_chump.dispatch.worktrees import Prepared
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.loop.workers import Pending
from pytest_chump.state.locks import repo_lock
from pytest_chump.state.store import Store
from tests.gitrepos import repo  # noqa: F401  (fixture)
from tests.waiting import until

TWO = (
    "gaps:\n  - {id: FAST-1, priority: P0, effort: s}\n  - {id: SLOW-1, priority: P1, effort: s}\n"
)


def shipped(db: Path, gap_id: str) -> bool:
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM dispatches WHERE gap_id=? AND outcome='shipped'", (gap_id,)
        ).fetchone()
    return row is not None


def dispatched(db: Path, gap_id: str) -> bool:
    """Whether ``gap_id``'s agent was started (its dispatch is past starting)."""
    with sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM dispatches WHERE gap_id=? AND state != 'starting'", (gap_id,)
        ).fetchone()
    return row is not None


class SlowWorktree(GitWorktrees):
    """``slow-1``'s worktree is ready only once FAST-1's outcome is recorded (or never)."""

    seen: list[bool]

    def prepare(self, worktree: Path, branch: str, base_ref: str) -> Prepared:
        if worktree.name == "slow-1":
            db = self.repo_root / ".chump" / "chump.db"
            self.seen.append(until(lambda: shipped(db, "FAST-1"), timeout=30))
        return super().prepare(worktree, branch, base_ref)


def test_an_outcome_is_recorded_while_another_worktree_is_made(repo: Path) -> None:
    """(On the loop thread, ``dispatch_workers = 0``, SLOW-1's worktree would hold the loop
    and FAST-1's outcome would wait for it: ``seen`` would be [False].)"""
    (repo / "docs/gaps.yaml").write_text(TWO)
    app = App.create({"repo_root": str(repo)})
    out = io.StringIO()
    slow = SlowWorktree(repo, app.settings.bot_identity)
    slow.seen = []
    with Store.for_repo(repo) as store:
        orch = Orchestrator(
            app, store, app.spawner_factory(), app.provider(), Progress(out, out), workspaces=slow
        )
        orch.run()
        rows = {r.gap_id: r.outcome for r in store.dispatches()}
    assert slow.seen == [True], out.getvalue()  # FAST-1 ended while SLOW-1's worktree was made
    assert rows == {"FAST-1": "shipped", "SLOW-1": "shipped"}, out.getvalue()
    lines = [ln.split(":")[0] + " " + ln.split()[1] for ln in out.getvalue().splitlines()
             if ln.startswith(("DISPATCHED", "OUTCOME"))]  # fmt: skip
    assert lines == [
        "DISPATCHED FAST-1",
        "OUTCOME FAST-1",
        "DISPATCHED SLOW-1",
        "OUTCOME SLOW-1",
    ]


class LockedSlowWorktree(GitWorktrees):
    """``slow-1``'s worktree holds the repository lock, as a long ``git worktree add`` does,
    until FAST-1's outcome is recorded (or a bound passes)."""

    seen: list[bool]

    def prepare(self, worktree: Path, branch: str, base_ref: str) -> Prepared:
        if worktree.name != "slow-1":
            return super().prepare(worktree, branch, base_ref)
        db = self.repo_root / ".chump" / "chump.db"
        # FAST-1's own worktree must exist first: its add needs the lock held below
        assert until(lambda: dispatched(db, "FAST-1"), timeout=30)
        with repo_lock(self.repo_root):
            self.seen.append(until(lambda: shipped(db, "FAST-1"), timeout=30))
            return worktrees.prepare(self.repo_root, worktree, branch, base_ref)


def test_the_git_provider_records_an_outcome_while_a_worker_holds_the_repository_lock(
    repo: Path,
) -> None:
    """The git provider with a remote fetches on the loop thread: it must not wait for the
    repository lock a worker holds for a whole worktree add (before: its poll waited for it,
    so FAST-1's pushed work was seen only once SLOW-1's worktree was made: ``seen`` [False])."""
    (repo / "docs/gaps.yaml").write_text(TWO)
    app = App.create({"repo_root": str(repo)})
    assert (app.settings.pr_provider, app.settings.base_ref) == ("git", "origin/main")
    out = io.StringIO()
    slow = LockedSlowWorktree(repo, app.settings.bot_identity)
    slow.seen = []
    with Store.for_repo(repo) as store:
        orch = Orchestrator(
            app, store, app.spawner_factory(), app.provider(), Progress(out, out), workspaces=slow
        )
        orch.run()
        rows = {r.gap_id: r.outcome for r in store.dispatches()}
    assert slow.seen == [True], out.getvalue()
    assert rows == {"FAST-1": "shipped", "SLOW-1": "shipped"}, out.getvalue()


class SlowFirst(GitWorktrees):
    """SLOW-1 (started first) has its worktree only once FAST-1 (started second) shipped."""

    seen: list[bool]

    def prepare(self, worktree: Path, branch: str, base_ref: str) -> Prepared:
        if worktree.name == "slow-1":
            db = self.repo_root / ".chump" / "chump.db"
            self.seen.append(until(lambda: shipped(db, "FAST-1"), timeout=30))
        return super().prepare(worktree, branch, base_ref)


def test_a_start_that_finished_is_not_held_behind_an_earlier_slow_one(repo: Path) -> None:
    """Both start at once on two workers; FAST-1's start ends first and its agent is watched
    (its outcome recorded) while SLOW-1's worktree is still being made. (Starts taken back
    in the order they began would hold FAST-1 until SLOW-1 had its worktree: ``seen``
    would be [False].)"""
    (repo / "docs/gaps.yaml").write_text(
        "gaps:\n  - {id: SLOW-1, priority: P0, effort: s}\n"
        "  - {id: FAST-1, priority: P1, effort: s}\n"
    )
    app = App.create({"repo_root": str(repo)})
    assert app.settings.dispatch_workers >= 2
    out = io.StringIO()
    slow = SlowFirst(repo, app.settings.bot_identity)
    slow.seen = []
    with Store.for_repo(repo) as store:
        orch = Orchestrator(
            app, store, app.spawner_factory(), app.provider(), Progress(out, out), workspaces=slow
        )
        orch.run()
        rows = {r.gap_id: r.outcome for r in store.dispatches()}
    assert slow.seen == [True], out.getvalue()
    assert rows == {"FAST-1": "shipped", "SLOW-1": "shipped"}, out.getvalue()
    lines = [ln.split(":")[0] + " " + ln.split()[1] for ln in out.getvalue().splitlines()
             if ln.startswith(("DISPATCHED", "OUTCOME"))]  # fmt: skip
    assert lines == ["DISPATCHED FAST-1", "OUTCOME FAST-1", "DISPATCHED SLOW-1", "OUTCOME SLOW-1"]


def test_work_comes_back_as_it_completes() -> None:
    """Each piece as soon as it is done; pieces done together in the order they began."""
    pending: Pending[str, int] = Pending()
    first, second, third = Future[int](), Future[int](), Future[int]()
    for key, future in (("first", first), ("second", second), ("third", third)):
        pending.add(key, future)
    assert pending.done() == []
    third.set_result(3)
    second.set_result(2)
    assert [key for key, _ in pending.done()] == ["second", "third"]
    assert pending.keys() == ["first"]
    assert len(pending) == 1
    first.set_result(1)
    pending.wait()
    assert [(key, f.result()) for key, f in pending.done()] == [("first", 1)]
    assert len(pending) == 0
