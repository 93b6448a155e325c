"""Worktrees and branches for dispatches, against real git repositories in tmp dirs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_chump.core.errors import ChumpError
from pytest_chump.core.remote_refs import fetch
from pytest_chump.dispatch.worktrees import (
    Prepared,
    branch_exists,
    delete_branch_if_merged,
    has_commits_beyond,
    list_worktrees,
    prepare,
    remove,
    rollback,
    save_work,
)
from tests.gitrepos import child_pids, git, make_origin, open_fds

BRANCH = "chump/gap-1"


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    return make_origin(tmp_path)[1]


@pytest.fixture
def wt(tmp_path: Path) -> Path:
    """Where the worktree goes: two levels of parent dirs that do not exist yet."""
    return tmp_path / "trees" / "chump" / "gap-1"


def commit_file(worktree: Path, name: str, text: str = "x\n") -> str:
    (worktree / name).write_text(text, encoding="utf-8")
    git(worktree, "add", name)
    git(worktree, "commit", "--quiet", "-m", f"add {name}")
    return git(worktree, "rev-parse", "HEAD")


def one_line_error(excinfo: pytest.ExceptionInfo[ChumpError]) -> str:
    message = str(excinfo.value)
    assert message
    assert "\n" not in message
    return message


# prepare ----------------------------------------------------------------------------------------


def test_prepare_creates_branch_and_worktree_from_base(clone: Path, wt: Path) -> None:
    prepared = prepare(clone, wt, BRANCH, "origin/main")
    base = git(clone, "rev-parse", "origin/main")
    assert prepared == Prepared(wt.resolve(), BRANCH, True, True, "", base)
    assert git(wt, "rev-parse", "HEAD") == base
    assert git(wt, "symbolic-ref", "--short", "HEAD") == BRANCH
    assert branch_exists(clone, BRANCH)
    assert list_worktrees(clone) == [(wt.resolve(), BRANCH)]
    assert git(clone, "for-each-ref", "--format=%(upstream)", f"refs/heads/{BRANCH}") == ""


def test_prepare_again_reuses_the_worktree(clone: Path, wt: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    (wt / "scratch.txt").write_text("in progress\n", encoding="utf-8")
    again = prepare(clone, wt, BRANCH, "origin/main")
    assert again == Prepared(wt.resolve(), BRANCH, False, False, "worktree")
    assert (wt / "scratch.txt").read_text(encoding="utf-8") == "in progress\n"


def test_vanished_worktree_is_pruned_and_its_branch_continued(clone: Path, wt: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    earlier = commit_file(wt, "earlier.txt")
    shutil.rmtree(wt)
    again = prepare(clone, wt, BRANCH, "origin/main")
    assert again == Prepared(wt.resolve(), BRANCH, False, True, "branch")
    assert git(wt, "rev-parse", "HEAD") == earlier
    assert (wt / "earlier.txt").exists()


def test_worktree_on_another_branch_is_refused(clone: Path, wt: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    with pytest.raises(ChumpError) as excinfo:
        prepare(clone, wt, "chump/gap-2", "origin/main")
    message = one_line_error(excinfo)
    assert BRANCH in message
    assert "chump/gap-2" in message
    assert not branch_exists(clone, "chump/gap-2")


def test_branch_checked_out_elsewhere_is_refused(clone: Path, wt: Path, tmp_path: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    other = tmp_path / "trees" / "other"
    with pytest.raises(ChumpError) as excinfo:
        prepare(clone, other, BRANCH, "origin/main")
    assert str(wt.resolve()) in one_line_error(excinfo)
    assert not other.exists()


def test_main_work_tree_is_refused(clone: Path) -> None:
    with pytest.raises(ChumpError) as excinfo:
        prepare(clone, clone, "main", "origin/main")
    assert "main work tree" in one_line_error(excinfo)


def test_foreign_directory_is_refused(clone: Path, wt: Path) -> None:
    wt.mkdir(parents=True)
    (wt / "notes.txt").write_text("mine\n", encoding="utf-8")
    with pytest.raises(ChumpError) as excinfo:
        prepare(clone, wt, BRANCH, "origin/main")
    assert one_line_error(excinfo) == f"{wt} exists and is not a git worktree; move it away"
    assert (wt / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    assert not branch_exists(clone, BRANCH)


def test_empty_directory_is_taken_over(clone: Path, wt: Path) -> None:
    wt.mkdir(parents=True)
    assert prepare(clone, wt, BRANCH, "origin/main").created_worktree
    assert (wt / "README").exists()


def test_unknown_base_ref_leaves_nothing_behind(clone: Path, wt: Path) -> None:
    with pytest.raises(ChumpError) as excinfo:
        prepare(clone, wt, BRANCH, "origin/nope")
    assert "'origin/nope'" in one_line_error(excinfo)
    assert not branch_exists(clone, BRANCH)
    assert list_worktrees(clone) == []
    assert not wt.exists()


def moved_origin(clone: Path) -> str:
    """Push a new commit to origin's main from another clone; the new commit."""
    other = clone.parent / "other"
    git(clone.parent, "clone", "--quiet", str(clone.parent / "origin.git"), str(other))
    new = commit_file(other, "moved.txt")
    git(other, "push", "--quiet", "origin", "HEAD:main")
    return new


def test_new_branch_starts_from_chumps_newer_copy_of_the_base(clone: Path, wt: Path) -> None:
    new = moved_origin(clone)
    fetch(clone, "origin")  # chump's poll; the user has not fetched
    assert git(clone, "rev-parse", "origin/main") != new
    assert prepare(clone, wt, BRANCH, "origin/main").start == new
    assert not has_commits_beyond(clone, BRANCH, "origin/main")


def test_new_branch_starts_from_the_users_newer_copy_of_the_base(clone: Path, wt: Path) -> None:
    """The user pulled after chump last fetched (a post-merge hook then dispatches)."""
    fetch(clone, "origin")
    new = moved_origin(clone)
    git(clone, "pull", "--quiet", "--ff-only")
    assert git(clone, "rev-parse", "refs/chump/remotes/origin/main") != new
    assert prepare(clone, wt, BRANCH, "origin/main").start == new


def test_git_failure_is_one_line_naming_the_subcommand(clone: Path, wt: Path) -> None:
    with pytest.raises(ChumpError) as excinfo:
        prepare(clone, wt, "chump/bad..name", "origin/main")
    message = one_line_error(excinfo)
    assert message.startswith("git worktree add: ")
    assert "bad..name" in message
    assert not branch_exists(clone, "chump/bad..name")
    assert list_worktrees(clone) == []


# rollback ---------------------------------------------------------------------------------------


def test_rollback_removes_what_prepare_created(clone: Path, wt: Path) -> None:
    prepared = prepare(clone, wt, BRANCH, "origin/main")
    (wt / "prompt.md").write_text("written by the failed step\n", encoding="utf-8")
    rollback(clone, prepared)
    assert not wt.exists()
    assert not branch_exists(clone, BRANCH)
    assert list_worktrees(clone) == []


def test_rollback_keeps_a_reused_branch(clone: Path, wt: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    earlier = commit_file(wt, "earlier.txt")
    shutil.rmtree(wt)
    prepared = prepare(clone, wt, BRANCH, "origin/main")
    rollback(clone, prepared)
    assert not wt.exists()
    assert git(clone, "rev-parse", BRANCH) == earlier


def test_rollback_keeps_a_reused_worktree(clone: Path, wt: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    rollback(clone, prepare(clone, wt, BRANCH, "origin/main"))
    assert list_worktrees(clone) == [(wt.resolve(), BRANCH)]


def test_rollback_keeps_a_created_branch_that_got_commits(clone: Path, wt: Path) -> None:
    prepared = prepare(clone, wt, BRANCH, "origin/main")
    tip = commit_file(wt, "work.txt")
    rollback(clone, prepared)
    assert git(clone, "rev-parse", BRANCH) == tip


def test_rollback_of_already_gone_things_is_quiet(clone: Path, wt: Path) -> None:
    prepared = prepare(clone, wt, BRANCH, "origin/main")
    shutil.rmtree(wt)
    git(clone, "worktree", "prune")
    git(clone, "branch", "-D", BRANCH)
    rollback(clone, prepared)
    assert list_worktrees(clone) == []


def test_rollback_never_removes_the_main_work_tree(clone: Path) -> None:
    rollback(clone, Prepared(clone.resolve(), "main", False, True, ""))
    assert (clone / "README").exists()
    assert branch_exists(clone, "main")


# save_work and remove ---------------------------------------------------------------------------


def test_save_work_commits_everything_with_the_given_identity(clone: Path, wt: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    assert save_work(wt, "nothing") is False
    (wt / ".gitignore").write_text("*.log\n", encoding="utf-8")
    (wt / "run.log").write_text("ignored\n", encoding="utf-8")
    env = {"GIT_AUTHOR_NAME": "Agent", "GIT_AUTHOR_EMAIL": "agent@example.invalid"}
    assert save_work(wt, "agent work", env=env) is True
    assert git(wt, "log", "-1", "--format=%an|%s") == "Agent|agent work"
    assert git(wt, "show", "--name-only", "--format=", "HEAD") == ".gitignore"
    assert git(wt, "status", "--porcelain") == ""


def test_remove_commits_uncommitted_work_then_removes(clone: Path, wt: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    (wt / "README").write_text("changed\n", encoding="utf-8")
    (wt / "new.txt").write_text("new\n", encoding="utf-8")
    assert remove(clone, wt, message="chump: save work") == ""
    assert not wt.exists()
    assert list_worktrees(clone) == []
    assert git(clone, "log", "-1", "--format=%s", BRANCH) == "chump: save work"
    stat = git(clone, "show", "--stat", "--format=", BRANCH)
    assert "README" in stat
    assert "new.txt" in stat
    assert git(clone, "show", f"{BRANCH}:README") == "changed"


def test_remove_clean_worktree_keeps_branch_unchanged(clone: Path, wt: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    tip = commit_file(wt, "done.txt")
    assert remove(clone, wt, message="unused") == ""
    assert not wt.exists()
    assert git(clone, "rev-parse", BRANCH) == tip


def test_remove_vanished_worktree_prunes(clone: Path, wt: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    shutil.rmtree(wt)
    assert remove(clone, wt, message="unused") == ""
    assert list_worktrees(clone) == []
    assert remove(clone, wt, message="unused") == ""  # and again: still nothing to do
    assert branch_exists(clone, BRANCH)


def test_remove_keeps_worktree_when_work_cannot_be_committed(clone: Path, wt: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    (wt / "README").write_text("precious\n", encoding="utf-8")
    lock = Path(git(wt, "rev-parse", "--absolute-git-dir")) / "index.lock"
    lock.write_text("", encoding="utf-8")
    explanation = remove(clone, wt, message="save")
    assert explanation.startswith(f"kept {wt}: could not commit its changes: git add: ")
    assert "index.lock" in explanation
    assert "\n" not in explanation
    assert (wt / "README").read_text(encoding="utf-8") == "precious\n"
    assert list_worktrees(clone) == [(wt.resolve(), BRANCH)]
    lock.unlink()
    assert remove(clone, wt, message="save") == ""
    assert git(clone, "show", f"{BRANCH}:README") == "precious"


def test_remove_leaves_a_path_that_is_not_a_linked_worktree_alone(
    clone: Path, tmp_path: Path
) -> None:
    (clone / "README").write_text("dirty main\n", encoding="utf-8")
    assert remove(clone, clone, message="no").startswith(f"kept {clone}: not a linked worktree")
    assert git(clone, "status", "--porcelain") == "M README"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    assert remove(clone, foreign, message="no").startswith(f"kept {foreign}: ")
    assert foreign.exists()


# branches ---------------------------------------------------------------------------------------


def test_delete_branch_if_merged(clone: Path, wt: Path, tmp_path: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    commit_file(wt, "merged.txt")
    assert has_commits_beyond(clone, BRANCH, "origin/main")
    assert delete_branch_if_merged(clone, BRANCH, "origin/main") is False  # unmerged: kept
    assert remove(clone, wt, message="unused") == ""
    git(clone, "push", "--quiet", "origin", f"{BRANCH}:main")
    git(clone, "fetch", "--quiet", "origin")
    assert not has_commits_beyond(clone, BRANCH, "origin/main")
    assert delete_branch_if_merged(clone, BRANCH, "origin/main") is True
    assert not branch_exists(clone, BRANCH)
    assert delete_branch_if_merged(clone, BRANCH, "origin/main") is False  # already gone


def test_unmerged_branch_is_kept(clone: Path, wt: Path) -> None:
    prepare(clone, wt, BRANCH, "origin/main")
    tip = commit_file(wt, "unmerged.txt")
    assert remove(clone, wt, message="unused") == ""
    assert delete_branch_if_merged(clone, BRANCH, "origin/main") is False
    assert git(clone, "rev-parse", BRANCH) == tip


def test_list_worktrees_reports_detached_heads(clone: Path, tmp_path: Path) -> None:
    detached = tmp_path / "detached"
    git(clone, "worktree", "add", "--quiet", "--detach", str(detached), "origin/main")
    assert list_worktrees(clone) == [(detached.resolve(), None)]


# errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda clone, wt: prepare(clone.parent, wt, BRANCH, "origin/main"),
        lambda clone, wt: prepare(clone, wt, "-x", "origin/main"),
        lambda clone, wt: prepare(clone, wt, BRANCH, "--output=x"),
        lambda clone, wt: save_work(wt, "nothing to open"),
        lambda clone, wt: has_commits_beyond(clone, "no-such-branch", "origin/main"),
        lambda clone, wt: delete_branch_if_merged(clone, "main", "origin/nope"),
        lambda clone, wt: list_worktrees(clone / "missing"),
        lambda clone, wt: rollback(clone.parent, Prepared(wt, BRANCH, True, True, "")),
    ],
    ids=[
        "not-a-repo",
        "dash-branch",
        "dash-base",
        "save-missing",
        "no-branch",
        "bad-base",
        "missing-root",
        "rollback-not-a-repo",
    ],
)
def test_failures_are_one_line_chump_errors(
    clone: Path, wt: Path, call: Callable[[Path, Path], object]
) -> None:
    with pytest.raises(ChumpError) as excinfo:  # a GitCommandError would fail this test
        call(clone, wt)
    one_line_error(excinfo)


def test_module_import_does_not_load_gitpython() -> None:
    code = "import sys, pytest_chump.dispatch.worktrees; print('git' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


# leaks ------------------------------------------------------------------------------------------

LEAK_CYCLES = 32  # any leak per cycle shows: the counts must come back exactly


def test_prepare_remove_cycles_leak_no_fds_or_processes(clone: Path, tmp_path: Path) -> None:
    def cycle(n: int) -> None:
        path = tmp_path / "trees" / f"leak-{n}"
        prepare(clone, path, f"chump/leak-{n}", "origin/main")
        (path / "work.txt").write_text(f"{n}\n", encoding="utf-8")
        assert remove(clone, path, message=f"leak {n}") == ""

    cycle(0)  # warm-up: GitPython's one-time `git version` probe, lazy imports
    fds, children = open_fds(), child_pids()
    started = time.monotonic()
    for n in range(1, LEAK_CYCLES + 1):
        cycle(n)
    elapsed = time.monotonic() - started
    after = (open_fds(), child_pids())
    print(
        f"{LEAK_CYCLES} cycles {elapsed:.1f}s fds {fds}->{after[0]} children {children}->{after[1]}"
    )
    assert after == (fds, children)
    assert list_worktrees(clone) == []
