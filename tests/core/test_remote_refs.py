"""chump's own fetch namespace and base resolution, against real repositories in tmp dirs.

The user's git and chump's never lock the same ref: a lock file left where an in-flight
``git fetch``/``git pull`` of the user's holds one shows it deterministically, without racing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_chump.core import remote_refs
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.remote_refs import fetch, own_ref, resolve
from tests.gitrepos import git, make_origin

Repos = tuple[Path, Path]  # (the user's clone, another clone that moves origin)


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    origin, clone = make_origin(tmp_path)
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(origin), str(other))
    return clone, other


def push_commit(other: Path, name: str, branch: str = "main", force: bool = False) -> str:
    """Commit ``name`` in ``other`` and push it to origin's ``branch``; the new commit."""
    (other / name).write_text(f"{name}\n", encoding="utf-8")
    git(other, "add", name)
    git(other, "commit", "--quiet", "-m", f"add {name}")
    plus = "+" if force else ""
    git(other, "push", "--quiet", "origin", f"{plus}HEAD:refs/heads/{branch}")
    return git(other, "rev-parse", "HEAD")


def users_refs(clone: Path) -> str:
    """Every ref of the user's that is not chump's, with its commit."""
    listed = git(clone, "for-each-ref", "--format=%(objectname) %(refname)").splitlines()
    return "\n".join(line for line in listed if " refs/chump/" not in line)


def fetch_head(clone: Path) -> tuple[bytes, int]:
    path = clone / ".git" / "FETCH_HEAD"
    return path.read_bytes(), path.stat().st_mtime_ns


def hold_lock(clone: Path, ref: str) -> Path:
    """Create ``<ref>.lock`` as a git process updating ``ref`` holds it; the lock's path."""
    lock = clone / ".git" / f"{ref}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("", encoding="utf-8")
    return lock


def git_code(cwd: Path, *args: str) -> int:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False).returncode


# --- fetch -----------------------------------------------------------------------------------


def test_fetch_writes_only_chumps_namespace(repos: Repos) -> None:
    clone, other = repos
    git(other, "tag", "-a", "-m", "v1", "v1")
    git(other, "push", "--quiet", "origin", "v1")
    new = push_commit(other, "new.txt")
    side = push_commit(other, "side.txt", "side")
    before, head = users_refs(clone), fetch_head(clone)
    fetch(clone, "origin", prune=True)
    assert users_refs(clone) == before  # refs/remotes/*, refs/tags/*, refs/heads/*
    assert fetch_head(clone) == head
    assert git(clone, "rev-parse", own_ref("origin", "main")) == new
    assert git(clone, "rev-parse", own_ref("origin", "side")) == side


def test_fetch_of_named_branches_and_pruning_stay_in_chumps_namespace(repos: Repos) -> None:
    clone, other = repos
    push_commit(other, "side.txt", "side")
    git(clone, "fetch", "--quiet", "origin")  # the user's own fetch: refs/remotes/origin/side
    fetch(clone, "origin")
    new = push_commit(other, "new.txt")
    fetch(clone, "origin", ["main"])
    assert git(clone, "rev-parse", own_ref("origin", "main")) == new
    git(other, "push", "--quiet", "origin", "--delete", "side")
    before = users_refs(clone)
    fetch(clone, "origin", prune=True)
    chumps = git(clone, "for-each-ref", "--format=%(refname)", "refs/chump/")
    assert chumps.splitlines() == [own_ref("origin", "main")]  # chump's copy of side pruned
    assert users_refs(clone) == before  # the user's refs/remotes/origin/side is theirs to prune


def test_fetch_succeeds_while_the_users_fetch_holds_its_ref(repos: Repos) -> None:
    clone, other = repos
    new = push_commit(other, "new.txt")
    lock = hold_lock(clone, "refs/remotes/origin/main")
    assert git_code(clone, "fetch", "--quiet", "--prune", "origin") != 0  # the old collision
    fetch(clone, "origin", prune=True)
    fetch(clone, "origin", ["main"])
    assert git(clone, "rev-parse", own_ref("origin", "main")) == new
    assert resolve(clone, "origin/main") == new
    assert lock.exists()  # never taken over nor removed


def test_users_fetch_and_pull_succeed_while_chumps_ref_is_locked(repos: Repos) -> None:
    clone, other = repos
    fetch(clone, "origin")
    new = push_commit(other, "new.txt")
    hold_lock(clone, own_ref("origin", "main"))
    assert git_code(clone, "fetch", "origin") == 0
    assert git(clone, "rev-parse", "refs/remotes/origin/main") == new
    assert git_code(clone, "pull", "--quiet", "--ff-only", "origin", "main") == 0
    assert git(clone, "rev-parse", "HEAD") == new


@pytest.mark.parametrize(
    ("remote", "branches", "message"),
    [
        ("-upload-pack=evil", None, "remote name '-upload-pack=evil' starts with '-'"),
        ("", None, "remote name is empty"),
        ("or igin", None, "remote name 'or igin' contains whitespace"),
        ("origin", ["main:refs/heads/x"], "branch name 'main:refs/heads/x' contains ':'"),
        ("origin", ["*"], "branch name '*' contains '*'"),
        ("origin", ["--prune"], "branch name '--prune' starts with '-'"),
        ("origin", ["ma\nin"], "branch name 'ma\\nin' contains whitespace"),
    ],
)
def test_unusable_names_are_one_line_errors_before_git_runs(
    repos: Repos, remote: str, branches: list[str] | None, message: str
) -> None:
    clone, _ = repos
    with pytest.raises(ChumpError) as excinfo:
        fetch(clone, remote, branches)
    assert str(excinfo.value) == message
    assert not (clone / ".git" / "refs" / "chump").exists()


def test_git_failure_is_a_one_line_error(repos: Repos) -> None:
    clone, _ = repos
    with pytest.raises(ChumpError) as excinfo:
        fetch(clone, "nowhere")
    assert len(str(excinfo.value).splitlines()) == 1


# --- resolving a base ref --------------------------------------------------------------------


def counting(monkeypatch: pytest.MonkeyPatch) -> list[Sequence[str]]:
    """The git commands remote_refs runs from now on."""
    seen: list[Sequence[str]] = []
    real = remote_refs.run

    def spy(argv: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        seen.append(argv)
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(remote_refs, "run", spy)
    return seen


def test_only_the_users_ref(repos: Repos) -> None:
    clone, _ = repos
    users = git(clone, "rev-parse", "refs/remotes/origin/main")
    assert resolve(clone, "origin/main") == users
    assert resolve(clone, "refs/remotes/origin/main") == users


def test_only_chumps_ref(repos: Repos) -> None:
    clone, other = repos
    new = push_commit(other, "new.txt")
    git(clone, "update-ref", "-d", "refs/remotes/origin/main")
    fetch(clone, "origin")
    assert resolve(clone, "origin/main") == new
    assert resolve(clone, "refs/remotes/origin/main") == new


def test_chumps_ref_newer(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    clone, other = repos
    new = push_commit(other, "new.txt")
    fetch(clone, "origin")
    seen = counting(monkeypatch)
    assert resolve(clone, "origin/main") == new
    assert len(seen) <= 2
    assert git(clone, "rev-parse", "refs/remotes/origin/main") != new


def test_users_ref_newer(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user pulled after chump fetched (a post-merge hook then dispatches): theirs wins."""
    clone, other = repos
    fetch(clone, "origin")
    new = push_commit(other, "new.txt")
    git(clone, "pull", "--quiet", "--ff-only", "origin", "main")
    seen = counting(monkeypatch)
    assert resolve(clone, "origin/main") == new
    assert len(seen) <= 2
    assert git(clone, "rev-parse", own_ref("origin", "main")) != new


def test_diverged_refs_resolve_to_chumps(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    """A force push: chump's copy is what the remote had when chump last looked."""
    clone, other = repos
    old = git(clone, "rev-parse", "refs/remotes/origin/main")
    users = push_commit(other, "lost.txt")
    git(clone, "fetch", "--quiet", "origin")
    git(other, "reset", "--quiet", "--hard", old)
    forced = push_commit(other, "forced.txt", force=True)
    fetch(clone, "origin")
    assert git(clone, "rev-parse", "refs/remotes/origin/main") == users
    seen = counting(monkeypatch)
    assert resolve(clone, "origin/main") == forced
    assert len(seen) <= 2


def test_equal_refs_take_one_process(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    clone, _ = repos
    fetch(clone, "origin")
    seen = counting(monkeypatch)
    assert resolve(clone, "origin/main") == git(clone, "rev-parse", "origin/main")
    assert len(seen) == 1


def test_local_refs_and_shas_resolve_as_git_does(repos: Repos) -> None:
    clone, _ = repos
    fetch(clone, "origin")
    head = git(clone, "rev-parse", "HEAD")
    git(clone, "branch", "feature/x", "HEAD")
    for ref in ("main", "refs/heads/main", head, head[:10], "HEAD", "feature/x", "origin/main~0"):
        assert resolve(clone, ref) == head, ref
    for ref in ("nope", "origin/nope", "refs/remotes/origin/nope", "-h", "", "main:README"):
        assert resolve(clone, ref) == "", ref
