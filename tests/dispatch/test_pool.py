"""The warm worktree pool (``worktree_pool``), against real git repositories in tmp dirs:
finished worktrees parked detached, reused at the next gap's branch with their ignored build
caches, never dirty, never shared, never more than N."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from pytest_chump.cli import main
from pytest_chump.core.config import Settings
from pytest_chump.core.errors import UsageError
from pytest_chump.dispatch import pool
from pytest_chump.dispatch.workspaces import GitWorktrees, PooledWorktrees, git_workspaces
from pytest_chump.dispatch.worktrees import Prepared, branch_exists, list_worktrees
from pytest_chump.state.store import Store
from tests.gitrepos import AGENT, git, make_origin

MESSAGE = "chump: save uncommitted work"


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clone whose ``.gitignore`` ignores ``node_modules/`` (a build cache)."""
    clone = make_origin(tmp_path)[1]
    (clone / ".gitignore").write_text("node_modules/\n")
    git(clone, "add", ".gitignore")
    git(clone, "commit", "-qm", "ignore the build cache")
    git(clone, "push", "-q", "origin", "main")
    git(clone, "fetch", "-q", "origin")
    return clone


def pooled(clone: Path, size: int = 1, clean: str = "tracked") -> PooledWorktrees:
    warnings: list[str] = []
    workspaces = PooledWorktrees(clone, size=size, clean=clean, warn=warnings.append)
    workspaces.warnings = warnings  # type: ignore[attr-defined]
    return workspaces


def tree(clone: Path, slug: str) -> Path:
    return clone / ".chump" / "worktrees" / slug


def start(ws: PooledWorktrees, clone: Path, slug: str) -> Prepared:
    return ws.prepare(tree(clone, slug), f"chump/{slug}", "origin/main")


def build_cache(worktree: Path, text: str = "built\n") -> None:
    (worktree / "node_modules").mkdir(exist_ok=True)
    (worktree / "node_modules" / "cache.txt").write_text(text)


def advance_base(clone: Path, name: str = "later.txt") -> str:
    """A new commit on origin/main (another gap landed)."""
    (clone / name).write_text("later\n")
    git(clone, "add", name)
    git(clone, "commit", "-qm", f"land {name}")
    git(clone, "push", "-q", "origin", "main")
    git(clone, "fetch", "-q", "origin")
    return git(clone, "rev-parse", "origin/main")


def parked(clone: Path) -> list[tuple[Path, str | None]]:
    return pool.parked(clone)


def slot(clone: Path, n: int) -> Path:
    return (clone / ".chump" / "pool" / str(n)).resolve()


def test_a_finished_worktree_is_parked_detached_after_its_work_is_saved(clone: Path) -> None:
    ws = pooled(clone)
    first = start(ws, clone, "a")
    (first.worktree / "notes.txt").write_text("unsaved\n")
    build_cache(first.worktree)
    assert ws.remove(first.worktree, MESSAGE) == ""
    assert not first.worktree.exists()
    assert parked(clone) == [(slot(clone, 0), None)]  # detached: the branch is free
    assert git(clone, "show", "chump/a:notes.txt") == "unsaved"  # the work is on the branch
    assert git(clone, "log", "-1", "--format=%s", "chump/a") == MESSAGE
    git(clone, "branch", "-D", "chump/a")  # a parked worktree does not hold its branch
    assert (slot(clone, 0) / "node_modules" / "cache.txt").read_text() == "built\n"


def test_the_next_gap_reuses_it_at_the_new_base_with_its_ignored_cache(clone: Path) -> None:
    ws = pooled(clone)
    first = start(ws, clone, "a")
    build_cache(first.worktree)
    (first.worktree / "README").write_text("changed by a\n")
    (first.worktree / "stray.txt").write_text("untracked\n")
    git(first.worktree, "add", "README")
    git(first.worktree, "commit", "-qm", "a's work")
    assert ws.remove(first.worktree, MESSAGE) == ""
    base = advance_base(clone)

    second = start(ws, clone, "b")
    assert second == Prepared(tree(clone, "b").resolve(), "chump/b", True, True, "", base, True)
    assert parked(clone) == []  # taken out of the pool
    assert git(second.worktree, "symbolic-ref", "--short", "HEAD") == "chump/b"
    assert git(second.worktree, "rev-parse", "HEAD") == base
    assert (second.worktree / "README").read_text() == "work\n"  # a's tracked changes are gone
    assert not (second.worktree / "stray.txt").exists()  # and its untracked files
    assert (second.worktree / "later.txt").exists()
    assert git(second.worktree, "status", "--porcelain") == ""
    assert (second.worktree / "node_modules" / "cache.txt").read_text() == "built\n"
    assert list_worktrees(clone) == [(second.worktree, "chump/b")]


def test_files_a_new_gitignore_no_longer_ignores_are_cleaned_away(clone: Path) -> None:
    (clone / ".gitignore").write_text("node_modules/\nbuild/\n")
    git(clone, "commit", "-qam", "ignore build/ too")
    git(clone, "push", "-q", "origin", "main")
    git(clone, "fetch", "-q", "origin")
    ws = pooled(clone)
    first = start(ws, clone, "a")
    build_cache(first.worktree)
    (first.worktree / "build").mkdir()
    (first.worktree / "build" / "out.o").write_text("object\n")
    ws.remove(first.worktree, MESSAGE)
    (clone / ".gitignore").write_text("node_modules/\n")  # build/ is not ignored any more
    git(clone, "commit", "-qam", "stop ignoring build/")
    git(clone, "push", "-q", "origin", "main")
    git(clone, "fetch", "-q", "origin")
    second = start(ws, clone, "b")
    assert second.pooled
    assert not (second.worktree / "build").exists()  # it would be an untracked file now
    assert (second.worktree / "node_modules" / "cache.txt").exists()
    assert git(second.worktree, "status", "--porcelain") == ""


def test_a_pooled_check_out_runs_the_post_checkout_hook_and_overwrites_ignored_files(
    clone: Path, tmp_path: Path
) -> None:
    """As ``git checkout`` does: the hook hears the switch, and an ignored file in the way of
    a newly tracked one gives way."""
    ws = pooled(clone)
    first = start(ws, clone, "a")
    (first.worktree / "node_modules").mkdir()
    (first.worktree / "node_modules" / "pinned.txt").write_text("local copy\n")
    ws.remove(first.worktree, MESSAGE)
    (clone / "node_modules").mkdir()
    (clone / "node_modules" / "pinned.txt").write_text("tracked now\n")
    git(clone, "add", "-f", "node_modules/pinned.txt")
    git(clone, "commit", "-qm", "vendor a file")
    git(clone, "push", "-q", "origin", "main")
    git(clone, "fetch", "-q", "origin")
    heard = tmp_path / "heard"
    hook = clone / ".git" / "hooks" / "post-checkout"
    hook.write_text(f'#!/bin/sh\necho "$3" >> {heard}\n')
    hook.chmod(0o755)
    second = start(ws, clone, "b")
    assert second.pooled
    assert (second.worktree / "node_modules" / "pinned.txt").read_text() == "tracked now\n"
    assert heard.read_text().splitlines() == ["1"]  # a branch switch


def test_pool_clean_all_drops_the_ignored_files_too(clone: Path) -> None:
    ws = pooled(clone, clean="all")
    first = start(ws, clone, "a")
    build_cache(first.worktree)
    ws.remove(first.worktree, MESSAGE)
    second = start(ws, clone, "b")
    assert second.pooled
    assert not (second.worktree / "node_modules").exists()


def test_a_retry_continues_its_branch_in_a_pooled_worktree(clone: Path) -> None:
    ws = pooled(clone)
    first = start(ws, clone, "a")
    git(first.worktree, "commit", "-q", "--allow-empty", "-m", "a's first attempt")
    tip = git(first.worktree, "rev-parse", "HEAD")
    ws.remove(first.worktree, MESSAGE)
    advance_base(clone)
    again = start(ws, clone, "a")
    assert again == Prepared(tree(clone, "a").resolve(), "chump/a", False, True, "branch", "", True)
    assert git(again.worktree, "rev-parse", "HEAD") == tip  # not reset to the new base


def test_a_parked_worktree_with_uncommitted_changes_is_not_reused(clone: Path) -> None:
    ws = pooled(clone)
    first = start(ws, clone, "a")
    build_cache(first.worktree)
    ws.remove(first.worktree, MESSAGE)
    (slot(clone, 0) / "README").write_text("written after it was parked\n")
    (slot(clone, 0) / "late.txt").write_text("and this\n")

    second = start(ws, clone, "b")
    assert not second.pooled  # a fresh worktree instead
    assert not (second.worktree / "node_modules").exists()
    assert (second.worktree / "README").read_text() == "work\n"
    assert not slot(clone, 0).exists()  # removed, its changes kept on a ref
    (ref,) = git(clone, "for-each-ref", "--format=%(refname)", "refs/chump/rescued/").split()
    assert git(clone, "show", f"{ref}:late.txt") == "and this"
    assert git(clone, "show", f"{ref}:README") == "written after it was parked"
    (warning,) = ws.warnings  # type: ignore[attr-defined]
    assert "instead of reusing it" in warning
    assert ref in warning


def test_the_pool_never_holds_more_than_n(clone: Path) -> None:
    ws = pooled(clone, size=2)
    trees = [start(ws, clone, slug) for slug in ("a", "b", "c")]
    for prepared in trees:
        build_cache(prepared.worktree)
        assert ws.remove(prepared.worktree, MESSAGE) == ""
    assert parked(clone) == [(slot(clone, 0), None), (slot(clone, 1), None)]
    assert list_worktrees(clone) == parked(clone)  # the third one was removed
    assert not trees[2].worktree.exists()
    for slug in ("a", "b", "c"):
        assert branch_exists(clone, f"chump/{slug}")  # branches are always kept


def test_two_prepares_at_once_never_share_a_worktree(clone: Path) -> None:
    ws = pooled(clone, size=2)
    for prepared in [start(ws, clone, slug) for slug in ("a", "b")]:
        ws.remove(prepared.worktree, MESSAGE)
    assert len(parked(clone)) == 2
    slugs = ("c", "d", "e", "f")
    results: dict[str, Prepared] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(slugs))

    def prepare(slug: str) -> None:
        try:
            barrier.wait()
            results[slug] = start(ws, clone, slug)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=prepare, args=(slug,)) for slug in slugs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.pooled for p in results.values()) == [False, False, True, True]
    registered = dict(list_worktrees(clone))
    assert len(registered) == 4
    for slug, prepared in results.items():
        assert registered[prepared.worktree] == f"chump/{slug}"
    assert parked(clone) == []


def test_rollback_of_a_pooled_prepare_parks_it_back_and_deletes_the_new_branch(
    clone: Path,
) -> None:
    ws = pooled(clone)
    ws.remove(start(ws, clone, "a").worktree, MESSAGE)
    build_cache(slot(clone, 0))
    prepared = start(ws, clone, "b")
    (prepared.worktree / "prompt.md").write_text("written by the failed step\n")
    (prepared.worktree / "README").write_text("so was this\n")
    ws.rollback(prepared)
    assert not prepared.worktree.exists()
    assert not branch_exists(clone, "chump/b")
    ((back, on),) = parked(clone)
    assert on is None
    assert git(back, "status", "--porcelain") == ""
    assert (back / "node_modules" / "cache.txt").exists()  # still warm
    assert start(ws, clone, "c").pooled


def test_rollback_of_a_pooled_retry_keeps_its_branch(clone: Path) -> None:
    ws = pooled(clone)
    first = start(ws, clone, "a")
    git(first.worktree, "commit", "-q", "--allow-empty", "-m", "work")
    tip = git(first.worktree, "rev-parse", "HEAD")
    ws.remove(first.worktree, MESSAGE)
    again = start(ws, clone, "a")
    assert again.pooled
    ws.rollback(again)
    assert git(clone, "rev-parse", "chump/a") == tip
    assert parked(clone) == [(slot(clone, 0), None)]


def test_a_rolled_back_fresh_worktree_is_removed_as_without_a_pool(clone: Path) -> None:
    ws = pooled(clone)
    prepared = start(ws, clone, "a")
    assert not prepared.pooled
    ws.rollback(prepared)
    assert list_worktrees(clone) == []
    assert not branch_exists(clone, "chump/a")


def test_a_worktree_a_crash_left_on_a_branch_in_the_pool_is_detached_and_reused(
    clone: Path,
) -> None:
    """Parking moves first and detaches after: a crash between them leaves the worktree in
    the pool on its branch (work saved). The next take detaches it and reuses it, and the
    gap's own retry can still check its branch out."""
    ws = pooled(clone)
    first = start(ws, clone, "a")
    (clone / ".chump" / "pool").mkdir(parents=True)
    git(clone, "worktree", "move", str(first.worktree), str(slot(clone, 0)))
    assert parked(clone) == [(slot(clone, 0), "chump/a")]
    again = start(ws, clone, "a")
    assert again.pooled
    assert again.reused == "branch"
    assert list_worktrees(clone) == [(again.worktree, "chump/a")]


def test_a_worktree_on_a_detached_head_is_removed_not_parked(clone: Path) -> None:
    ws = pooled(clone)
    prepared = start(ws, clone, "a")
    git(prepared.worktree, "checkout", "-q", "--detach")  # e.g. a rebase stopped half-way
    assert ws.remove(prepared.worktree, MESSAGE) == ""
    assert list_worktrees(clone) == []


def test_a_worktree_whose_work_cannot_be_saved_is_kept_not_parked(clone: Path) -> None:
    ws = pooled(clone)
    prepared = start(ws, clone, "a")
    (prepared.worktree / "notes.txt").write_text("unsaved\n")
    lock = Path(git(prepared.worktree, "rev-parse", "--absolute-git-dir")) / "index.lock"
    lock.write_text("")  # committing fails
    problem = ws.remove(prepared.worktree, MESSAGE)
    assert problem.startswith(f"kept {prepared.worktree}: could not commit its changes"), problem
    assert (prepared.worktree / "notes.txt").exists()
    assert parked(clone) == []


def test_empty_removes_parked_worktrees_and_rescues_changes(clone: Path) -> None:
    ws = pooled(clone, size=2)
    for prepared in [start(ws, clone, slug) for slug in ("a", "b")]:
        build_cache(prepared.worktree)
        ws.remove(prepared.worktree, MESSAGE)
    (slot(clone, 1) / "late.txt").write_text("written after it was parked\n")
    warnings: list[str] = []
    assert pool.empty(clone, warn=warnings.append) == 2
    assert list_worktrees(clone) == []
    assert len(warnings) == 1
    assert "late.txt" in warnings[0]
    assert git(clone, "for-each-ref", "--format=%(refname)", "refs/chump/rescued/")


def test_git_workspaces_follow_the_settings(clone: Path) -> None:
    assert type(git_workspaces(Settings(repo_root=clone))) is GitWorktrees
    ws = git_workspaces(Settings(repo_root=clone, worktree_pool=3, pool_clean="all"))
    assert isinstance(ws, PooledWorktrees)
    assert (ws.size, ws.clean_all) == (3, True)
    with pytest.raises(UsageError, match="worktree pool"):
        git_workspaces(Settings(repo_root=clone, worktree_pool=1, worktree_root=".chump/pool"))


# through the real loop ---------------------------------------------------------------------

CREATED = (  # after_create: say it ran (a worktree new to its dispatch, pooled or not)
    "import os; gap = os.environ['CHUMP_GAP_ID']; "
    "open(os.environ['POOL_TRACE'], 'a').write(f'{gap} after_create\\n')"
)
PROBE = (  # before each agent: say what node_modules/cache.txt holds, then "build" it
    "import os, pathlib; gap = os.environ['CHUMP_GAP_ID']; "
    "cache = pathlib.Path('node_modules/cache.txt'); "
    "found = cache.read_text() if cache.exists() else 'nothing'; "
    "open(os.environ['POOL_TRACE'], 'a').write(f'{gap} found {found}\\n'); "
    "cache.parent.mkdir(exist_ok=True); cache.write_text(f'the cache {gap} built')"
)


def test_the_second_gap_runs_in_the_first_gap_s_worktree_and_finds_its_cache(
    clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``chump dispatch --no-dry-run --watch`` with ``worktree_pool = 1``, twice: the first
    gap's worktree is parked when it ships, and the second gap's agent works in it, at a
    branch from the new base, its ignored build cache there."""
    trace = tmp_path / "trace"
    monkeypatch.setenv("POOL_TRACE", str(trace))
    (clone / "pyproject.toml").write_text(
        f"""[tool.chump]
spawner = "script"
pr_provider = "git"
max_parallel = 1
poll_interval = "50ms"
exit_grace = "20s"
worktree_pool = 1

[tool.chump.spawners.script]
command = {json.dumps([sys.executable, str(AGENT)])}

[tool.chump.worktree]
after_create = {json.dumps([sys.executable, "-c", CREATED])}
before_run = {json.dumps([sys.executable, "-c", PROBE])}
"""
    )
    run = ["dispatch", "--repo-root", str(clone), "--no-dry-run", "--watch"]
    (clone / "docs/gaps.yaml").write_text("gaps:\n  - {id: POOL-1, priority: P1, effort: s}\n")
    assert main(run) == 0
    assert pool.parked(clone) == [(slot(clone, 0), None)]
    git(clone, "fetch", "-q", "origin")
    base = git(clone, "rev-parse", "origin/main")  # with POOL-1's work

    (clone / "docs/gaps.yaml").write_text("gaps:\n  - {id: POOL-2, priority: P1, effort: s}\n")
    assert main(run) == 0
    assert trace.read_text().splitlines() == [
        "POOL-1 after_create",
        "POOL-1 found nothing",
        "POOL-2 after_create",  # new to its dispatch: at a new branch
        "POOL-2 found the cache POOL-1 built",
    ]
    with Store.for_repo(clone) as store:
        rows = {row.gap_id: row for row in store.dispatches()}
    assert {gap: row.outcome for gap, row in rows.items()} == {
        "POOL-1": "shipped",
        "POOL-2": "shipped",
    }
    assert rows["POOL-2"].meta_dict["base_sha"] == base
    git(clone, "fetch", "-q", "origin")
    assert git(clone, "show", "origin/main:POOL-2.txt") == "work for POOL-2"
    assert pool.parked(clone) == [(slot(clone, 0), None)]  # parked again
    assert (slot(clone, 0) / "node_modules/cache.txt").read_text() == "the cache POOL-2 built"
    assert not (clone / ".chump/worktrees/pool-2").exists()
