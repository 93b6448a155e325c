"""The offline ``git`` provider: shipped detection, deleted branches and the local merge gate.

Real repositories (a bare origin, the user's clone, a "forge" clone that merges like a web UI);
gate results are awaited through the provider's ``notify`` hook, never by sleeping.
"""

from __future__ import annotations

import io
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_chump.backlog import check_bytes
from pytest_chump.core import remote_refs
from pytest_chump.core.config import Settings
from pytest_chump.core.errors import ChumpError, UsageError
from pytest_chump.core.protocols import PrStatus, Watch
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.providers import git as git_module
from pytest_chump.providers.git import GateConfig, GitProvider, _factory, split_base
from pytest_chump.state.locks import repo_lock
from pytest_chump.state.store import Store
from tests.gitrepos import git, make_origin

PY = sys.executable
PASS = (PY, "-c", "import sys; sys.exit(0)")
BOT = {"NAME": "gate-bot", "EMAIL": "gate-bot@example.invalid"}
IDENTITY = {f"GIT_{role}_{k}": v for role in ("AUTHOR", "COMMITTER") for k, v in BOT.items()}
WAIT = 60.0
Repos = tuple[Path, Path, Path]
IN_WORKTREE = (PY, "-c", "import os, sys; sys.exit(os.path.basename(os.getcwd())[:3] != 'wt-')")


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    """(origin, the user's clone, a forge clone that merges branches like a web UI would)."""
    origin, clone = make_origin(tmp_path)
    forge = tmp_path / "forge"
    git(tmp_path, "clone", "--quiet", str(origin), str(forge))
    return origin, clone, forge


def start(clone: Path, branch: str, base: str = "origin/main") -> tuple[Path, str]:
    """A worktree on a new ``branch`` at ``base``, as a dispatch makes: (worktree, base sha)."""
    tree = clone.parent / f"wt-{branch}"
    git(clone, "worktree", "add", "--quiet", "-b", branch, str(tree), base)
    return tree, git(tree, "rev-parse", "HEAD")


def commit(tree: Path, name: str, text: str) -> str:
    (tree / name).write_text(text, encoding="utf-8")
    git(tree, "add", name)
    git(tree, "commit", "--quiet", "-m", f"write {name}")
    return git(tree, "rev-parse", "HEAD")


def gated(clone: Path, command: Sequence[str] = PASS, **options: Any) -> GitProvider:
    return GitProvider(clone, "origin/main", GateConfig(tuple(command), **options), IDENTITY)


def settle(*polls: tuple[GitProvider, list[Watch]]) -> dict[str, PrStatus]:
    """Poll until no watch is OPEN, woken only by the providers' ``notify``."""
    woken = threading.Event()
    for provider, _ in polls:
        provider.notify = woken.set
    for _ in range(100):
        result: dict[str, PrStatus] = {}
        for provider, watches in polls:
            result.update(provider.poll(watches))
        if all(s.state != "OPEN" for s in result.values()):
            return result
        assert woken.wait(WAIT), f"merge gate still pending: {result}"
        woken.clear()
    raise AssertionError("merge gate never settled")


def merged_on_forge(forge: Path, branch: str, how: str) -> None:
    """Land ``branch`` on origin/main from the forge clone: ``squash`` or ``rebase``."""
    git(forge, "fetch", "--quiet", "origin")
    if how == "squash":
        git(forge, "merge", "--quiet", "--squash", f"origin/{branch}")
        git(forge, "commit", "--quiet", "-m", f"{branch} (squashed)")
    else:
        git(forge, "checkout", "--quiet", "-b", "landing", f"origin/{branch}")
        git(forge, "rebase", "--quiet", "main")
        git(forge, "checkout", "--quiet", "main")
        git(forge, "merge", "--quiet", "--ff-only", "landing")
    git(forge, "push", "--quiet", "origin", "main")


def tripwires(clone: Path) -> Path:
    """Hooks that fail and leave a mark: the gate must not run the repository's hooks."""
    mark = clone.parent / "a-hook-ran"
    for name in ("post-checkout", "pre-merge-commit", "post-merge", "pre-push"):
        hook = clone / ".git" / "hooks" / name
        hook.write_text(f"#!/bin/sh\ntouch '{mark}'\nexit 1\n", encoding="utf-8")
        hook.chmod(0o755)
    return mark


def push_to_main(forge: Path, name: str) -> None:
    git(forge, "pull", "--quiet", "--ff-only", "origin", "main")
    commit(forge, name, f"{name} from elsewhere\n")
    git(forge, "push", "--quiet", "origin", "main")


# --- shipped detection ----------------------------------------------------------------------


def test_split_base_names_remote_and_branch() -> None:
    assert split_base("origin/main", ["origin"]) == ("origin", "main")
    assert split_base("refs/remotes/up/dev/x", ["up"]) == ("up", "dev/x")
    assert split_base("main", ["origin"]) == ("", "main")
    assert split_base("feature/x", ["origin"]) == ("", "feature/x")


def test_fresh_branch_is_absent_and_pushed_unmerged_branch_is_open(repos: Repos) -> None:
    _, clone, _ = repos
    tree, base = start(clone, "feat")
    empty_tree, empty_base = start(clone, "empty")
    git(empty_tree, "push", "--quiet", "origin", "empty")  # pushed, but nothing to ship
    provider = GitProvider(clone, "origin/main")
    watches = [Watch("feat", "F-1", base, tree), Watch("empty", "E-1", empty_base, empty_tree)]
    assert provider.poll(watches) == {}
    commit(tree, "f.txt", "f\n")
    assert provider.poll(watches) == {}  # committed, not pushed, no gate: no pull request yet
    git(tree, "push", "--quiet", "origin", "feat")
    assert provider.poll(watches) == {"feat": PrStatus(None, "OPEN")}


@pytest.mark.parametrize("merge_commit", [False, True], ids=["fast-forward", "merge-commit"])
def test_branch_on_base_by_ancestry_is_merged(repos: Repos, merge_commit: bool) -> None:
    _, clone, forge = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    git(tree, "push", "--quiet", "origin", "feat")
    if merge_commit:
        push_to_main(forge, "other.txt")
    git(forge, "fetch", "--quiet", "origin")
    git(forge, "merge", "--quiet", "--no-edit", "origin/feat")
    git(forge, "push", "--quiet", "origin", "main")
    status = GitProvider(clone, "origin/main").poll([Watch("feat", "F-1", base, tree)])
    assert status == {"feat": PrStatus(None, "MERGED")}


def test_squash_merge_is_found_by_patch_id_and_cached(repos: Repos) -> None:
    _, clone, forge = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "one\n")
    commit(tree, "g.txt", "two\n")
    git(tree, "push", "--quiet", "origin", "feat")
    push_to_main(forge, "other.txt")
    merged_on_forge(forge, "feat", "squash")
    git(forge, "push", "--quiet", "origin", "--delete", "feat")  # the forge tidies up
    provider = GitProvider(clone, "origin/main")
    runs: list[list[str]] = []
    real = provider._bytes

    def spy(argv: list[str], feed: bytes | None = None) -> bytes:
        runs.append(argv)
        return real(argv, feed)

    provider._bytes = spy  # type: ignore[method-assign]
    watch = Watch("feat", "F-1", base, tree)
    assert provider.poll([watch]) == {"feat": PrStatus(None, "MERGED")}
    first = len(runs)
    assert first > 0
    assert provider.poll([watch]) == {"feat": PrStatus(None, "MERGED")}
    assert len(runs) == first  # same tip, same base tip: nothing recomputed


def test_rebase_merge_is_found_by_patch_id(repos: Repos) -> None:
    _, clone, forge = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "one\n")
    commit(tree, "g.txt", "two\n")
    git(tree, "push", "--quiet", "origin", "feat")
    push_to_main(forge, "other.txt")
    merged_on_forge(forge, "feat", "rebase")
    provider = GitProvider(clone, "origin/main")
    assert provider.poll([Watch("feat", "F-1", base, tree)]) == {"feat": PrStatus(None, "MERGED")}


def test_one_fetch_per_poll_for_all_branches(repos: Repos, monkeypatch: pytest.MonkeyPatch) -> None:
    _, clone, _ = repos
    watches = []
    for name in ("a", "b", "c"):
        tree, base = start(clone, name)
        commit(tree, f"{name}.txt", "x\n")
        git(tree, "push", "--quiet", "origin", name)
        watches.append(Watch(name, name.upper(), base, tree))
    provider = GitProvider(clone, "origin/main")
    argvs: list[list[str]] = []
    real = git_module.run

    def spy(argv: Sequence[str], *args: Any, **kwargs: Any) -> Any:
        argvs.append(list(argv))
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(git_module, "run", spy)
    monkeypatch.setattr(remote_refs, "run", spy)
    for _ in range(2):
        assert {s.state for s in provider.poll(watches).values()} == {"OPEN"}
    fetches = [a for a in argvs if a[1] == "fetch"]
    assert len(fetches) == 2
    assert fetches[0][-2:] == ["origin", "+refs/heads/*:refs/chump/remotes/origin/*"]
    assert {"--prune", "--no-write-fetch-head", "--refmap="} <= set(fetches[0])


def test_remote_branch_deleted_unmerged_is_closed(repos: Repos) -> None:
    _, clone, forge = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    git(tree, "push", "--quiet", "origin", "feat")
    provider, watch = GitProvider(clone, "origin/main"), Watch("feat", "F-1", base, tree)
    assert provider.poll([watch])["feat"].state == "OPEN"
    git(forge, "push", "--quiet", "origin", "--delete", "feat")
    detail = "branch deleted from origin without being merged"
    assert provider.poll([watch]) == {
        "feat": PrStatus(None, "CLOSED", cause="branch-deleted", detail=detail)
    }


def hold_lock(clone: Path, ref: str) -> Path:
    """The lock file a git process updating ``ref`` (the user's ``git pull``) holds."""
    lock = clone / ".git" / f"{ref}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("", encoding="utf-8")
    return lock


def test_poll_succeeds_and_sees_the_remote_while_the_users_fetch_holds_a_ref(
    repos: Repos,
) -> None:
    """chump fetches into refs/chump/remotes/: a user's fetch or pull in flight (its lock on
    refs/remotes/origin/main) neither fails a poll nor has its refs or FETCH_HEAD written."""
    _, clone, forge = repos
    done, done_base = start(clone, "done")
    commit(done, "d.txt", "d\n")
    git(done, "push", "--quiet", "origin", "done")
    merged_on_forge(forge, "done", "squash")  # origin/main moves on
    git(forge, "checkout", "--quiet", "-b", "open", "main")
    commit(forge, "o.txt", "o\n")
    git(forge, "push", "--quiet", "origin", "open")  # pushed from elsewhere: unknown here
    users = git(clone, "for-each-ref", "refs/remotes/")
    fetch_head = (clone / ".git" / "FETCH_HEAD").read_bytes()
    lock = hold_lock(clone, "refs/remotes/origin/main")
    tree, base = start(clone, "open")
    result = GitProvider(clone, "origin/main").poll(
        [Watch("done", "D", done_base, done), Watch("open", "O", base, tree)]
    )
    assert result == {"done": PrStatus(None, "MERGED"), "open": PrStatus(None, "OPEN")}
    assert git(clone, "for-each-ref", "refs/remotes/") == users
    assert (clone / ".git" / "FETCH_HEAD").read_bytes() == fetch_head
    moved = git(forge, "rev-parse", "main")
    assert git(clone, "rev-parse", "refs/chump/remotes/origin/main") == moved
    assert lock.exists()


@contextmanager
def lock_held_by_a_worker(clone: Path) -> Iterator[None]:
    """The repository lock held by another thread, as a worker holds it for a whole
    ``git worktree add`` in a large repository, until the block ends."""
    held, release = threading.Event(), threading.Event()

    def worker() -> None:
        with repo_lock(clone):
            held.set()
            release.wait()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        assert held.wait(WAIT)
        yield
    finally:
        release.set()
        thread.join(WAIT)


def test_poll_fetches_and_sees_a_merge_while_a_worker_holds_the_repository_lock(
    repos: Repos,
) -> None:
    """The poll runs on the loop thread: it fetches beside a worktree being made instead of
    waiting for the lock (before: it waited until the worktree was made)."""
    _, clone, forge = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    git(tree, "push", "--quiet", "origin", "feat")
    provider, watch = GitProvider(clone, "origin/main"), Watch("feat", "F-1", base, tree)
    assert provider.poll([watch]) == {"feat": PrStatus(None, "OPEN")}
    merged_on_forge(forge, "feat", "squash")
    answers: list[Mapping[str, PrStatus]] = []
    with lock_held_by_a_worker(clone):
        poller = threading.Thread(target=lambda: answers.append(provider.poll([watch])))
        poller.start()
        poller.join(WAIT)
        assert answers == [{"feat": PrStatus(None, "MERGED")}]  # while the lock is held
    poller.join()
    assert provider.stale is False


def placeholder_worktree(clone: Path) -> Path:
    """What ``git worktree add`` leaves for its first milliseconds (git 2.39): a worktree
    whose HEAD is the null object id, which fails a fetch's connectivity check."""
    admin = clone / ".git" / "worktrees" / "being-added"
    admin.mkdir(parents=True)
    (admin / "HEAD").write_text("0" * 40 + "\n", encoding="utf-8")
    (admin / "commondir").write_text("../..\n", encoding="utf-8")
    tree = clone.parent / "being-added"
    tree.mkdir()
    (tree / ".git").write_text(f"gitdir: {admin}\n", encoding="utf-8")
    (admin / "gitdir").write_text(f"{tree / '.git'}\n", encoding="utf-8")
    return admin


def test_a_fetch_failing_beside_a_worktree_being_added_is_stale_then_reported(
    repos: Repos,
) -> None:
    """Beside a busy repository lock the fetch may fail in a ``git worktree add``'s first
    moments: the poll answers from the last fetch's refs (``stale``) and fetches again next
    time; only ``BESIDE_TRIES`` failures in a row are reported. With the lock free the
    same failure is reported at once, and a fetch that succeeds again is fresh."""
    _, clone, forge = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    git(tree, "push", "--quiet", "origin", "feat")
    provider, watch = GitProvider(clone, "origin/main"), Watch("feat", "F-1", base, tree)
    assert provider.poll([watch]) == {"feat": PrStatus(None, "OPEN")}
    merged_on_forge(forge, "feat", "squash")
    admin = placeholder_worktree(clone)
    with pytest.raises(ChumpError, match="did not send all necessary objects"):
        provider.poll([watch])  # the lock was free: nothing else to blame
    with lock_held_by_a_worker(clone):
        for _ in range(git_module.BESIDE_TRIES - 1):
            assert provider.poll([watch]) == {"feat": PrStatus(None, "OPEN")}  # the old refs
            assert provider.stale is True
        with pytest.raises(ChumpError, match="did not send all necessary objects"):
            provider.poll([watch])
        shutil.rmtree(admin)  # the worktree add went on
        assert provider.poll([watch]) == {"feat": PrStatus(None, "MERGED")}
        assert provider.stale is False


# --- the merge gate -------------------------------------------------------------------------


def test_gate_merges_finished_branches_with_numbers_and_spares_the_checkout(repos: Repos) -> None:
    origin, clone, _ = repos
    head, readme = git(clone, "rev-parse", "HEAD"), (clone / "README").read_text()
    users = git(clone, "rev-parse", "refs/remotes/origin/main")
    a_tree, a_base = start(clone, "feat-a")
    b_tree, b_base = start(clone, "feat-b")
    commit(a_tree, "a.txt", "a\n")
    commit(b_tree, "b.txt", "b\n")
    (a_tree / "loose.txt").write_text("left uncommitted by the agent\n")
    mark = tripwires(clone)
    provider = gated(clone, IN_WORKTREE)
    running = Watch("feat-a", "A", a_base, a_tree, agent_finished=False)
    assert provider.poll([running]) == {}  # the agent still works: no gate yet
    a = Watch("feat-a", "A", a_base, a_tree, agent_finished=True)
    assert settle((provider, [a])) == {"feat-a": PrStatus(1, "MERGED", checks="passing")}
    b = Watch("feat-b", "B", b_base, b_tree, agent_finished=True)
    assert settle((provider, [b])) == {"feat-b": PrStatus(2, "MERGED", checks="passing")}
    tip = git(origin, "rev-parse", "main")
    # pushed by name: git updates the user's copy too (its URL rewrites and options apply)
    assert git(clone, "rev-parse", "refs/remotes/origin/main") == tip != users
    assert git(clone, "rev-parse", "refs/chump/remotes/origin/main") == tip
    assert {"a.txt", "loose.txt", "b.txt"} <= set(git(clone, "ls-tree", "--name-only", tip).split())
    assert git(clone, "log", "-1", "--format=%an %cn %s", tip).startswith("gate-bot gate-bot Merge")
    assert git(clone, "rev-parse", "HEAD") == head == git(clone, "rev-parse", "main")
    assert git(clone, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(clone, "status", "--porcelain") == ""
    assert (clone / "README").read_text() == readme
    assert len(git(clone, "worktree", "list").splitlines()) == 3  # no temporary worktree left
    assert not mark.exists()


def test_failing_check_closes_with_its_last_lines(repos: Repos) -> None:
    origin, clone, _ = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    script = (
        "import os, sys\n"
        "for i in range(1, 12): print(f'line {i}')\n"
        "print('api_key=abcdefghijkl')\nprint(os.getcwd())\nsys.exit(3)"
    )
    before = git(origin, "rev-parse", "main")
    status = settle((gated(clone, (PY, "-c", script)), [Watch("feat", "F", base, tree, True)]))
    lines = [f"line {i}" for i in range(4, 12)] + ["api_key=[REDACTED]", str(tree.resolve())]
    assert status["feat"].state == "CLOSED"
    assert status["feat"].cause == "tests-failed"
    assert status["feat"].detail == "check failed (exit 3): " + " | ".join(lines)
    assert git(origin, "rev-parse", "main") == before


def test_failing_tests_are_named_in_one_line_and_the_output_kept_in_the_log(
    repos: Repos,
) -> None:
    _, clone, _ = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    script = (
        "import sys\n"
        "print('=' * 30 + ' short test summary info ' + '=' * 30)\n"
        "for n in range(7): print(f'FAILED tests/test_calc.py::test_case[{n}] - assert {n} == 0')\n"
        "print('ERROR tests/test_db.py - ModuleNotFoundError: token=abcdefghijkl0123')\n"
        "print('x' * 100000)\n"
        "sys.exit(1)"
    )
    status = settle((gated(clone, (PY, "-c", script)), [Watch("feat", "F", base, tree, True)]))
    detail = status["feat"].detail
    assert detail == (
        "tests failed: tests/test_calc.py::test_case[0], tests/test_calc.py::test_case[1], "
        "tests/test_calc.py::test_case[2], tests/test_calc.py::test_case[3], "
        "tests/test_calc.py::test_case[4] (+3 more)"
    )
    log = (clone / ".chump/logs/gate-feat.log").read_text()
    assert "test_case[6]" in log
    assert "x" * 100000 in log
    assert "abcdefghijkl0123" not in log  # redacted there too


def test_poll_never_waits_for_a_check_and_a_forgotten_branch_is_not_merged(repos: Repos) -> None:
    origin, clone, _ = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    go = clone.parent / "go"
    hold = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.01)"
    provider, before = gated(clone, (PY, "-c", hold)), git(origin, "rev-parse", "main")
    finished = threading.Event()
    provider.notify = finished.set
    watch = Watch("feat", "F", base, tree, True)
    pending = PrStatus(None, "OPEN", checks="pending")
    assert provider.poll([watch]) == {"feat": pending}
    assert provider.poll([watch]) == {"feat": pending}  # the check is still held
    assert provider.poll([]) == {}  # the dispatch ended another way: its gate is dropped
    go.write_text("go")
    assert finished.wait(WAIT)
    assert git(origin, "rev-parse", "main") == before
    assert settle((provider, [watch])) == {"feat": PrStatus(1, "MERGED", checks="passing")}


def test_a_branch_on_the_base_while_its_gate_runs_waits_for_the_gates_verdict(
    repos: Repos,
) -> None:
    """The gate's own push lands on the remote before its verdict (with the synthetic number)
    is set: a poll fetching meanwhile (beside the repository lock the gate holds) must say
    pending, not a numberless MERGED of its own."""
    _, clone, _ = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    go = clone.parent / "go"
    hold = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.01)"
    provider, watch = gated(clone, (PY, "-c", hold)), Watch("feat", "F", base, tree, True)
    pending = PrStatus(None, "OPEN", checks="pending")
    assert provider.poll([watch]) == {"feat": pending}
    git(tree, "push", "--quiet", "origin", "feat:main")  # on the base while the gate runs
    assert provider.poll([watch]) == {"feat": pending}
    go.write_text("go")
    assert settle((provider, [watch])) == {"feat": PrStatus(None, "MERGED", checks="passing")}


def test_check_that_cannot_start_is_a_gate_error(repos: Repos) -> None:
    _, clone, _ = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    provider = gated(clone, (str(clone.parent / "no-such-check"),))
    status = settle((provider, [Watch("feat", "F", base, tree, True)]))["feat"]
    assert (status.state, status.cause) == ("CLOSED", "gate-error")
    assert status.detail.startswith("check could not start: ")


def test_check_past_its_time_limit_fails(repos: Repos) -> None:
    _, clone, _ = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    provider = gated(clone, (PY, "-c", "import time; time.sleep(60)"), timeout=0.5)
    status = settle((provider, [Watch("feat", "F", base, tree, True)]))["feat"]
    assert (status.state, status.cause) == ("CLOSED", "tests-failed")
    assert status.detail == "check timed out after 0.5s"


def test_conflicting_second_branch_closes_and_leaves_the_base_alone(repos: Repos) -> None:
    origin, clone, _ = repos
    a_tree, a_base = start(clone, "feat-a")
    b_tree, b_base = start(clone, "feat-b")
    commit(a_tree, "README", "from a\n")
    commit(b_tree, "README", "from b\n")
    provider = gated(clone)
    assert settle((provider, [Watch("feat-a", "A", a_base, a_tree, True)]))["feat-a"].number == 1
    after_a = git(origin, "rev-parse", "main")
    status = settle((provider, [Watch("feat-b", "B", b_base, b_tree, True)]))["feat-b"]
    assert (status.state, status.cause) == ("CLOSED", "merge-conflict")
    assert status.detail == "conflict with main in README"
    own = git(clone, "rev-parse", "refs/chump/remotes/origin/main")
    assert git(origin, "rev-parse", "main") == after_a == own
    assert len(git(clone, "worktree", "list").splitlines()) == 3
    assert (clone / ".chump/merge-gate-counter").read_text() == "1\n"


def test_branches_finishing_together_are_merged_one_at_a_time(repos: Repos) -> None:
    origin, clone, _ = repos
    first, second = gated(clone), gated(clone)  # the second stands in for another orchestrator
    watches: list[Watch] = []
    for name in ("a", "b", "c", "d"):
        tree, base = start(clone, name)
        commit(tree, f"{name}.txt", f"{name}\n")
        watches.append(Watch(name, name.upper(), base, tree, True))
    status = settle((first, watches[:3]), (second, watches[3:]))
    assert sorted(s.number or 0 for s in status.values()) == [1, 2, 3, 4]
    assert {s.state for s in status.values()} == {"MERGED"}
    tip = git(origin, "rev-parse", "main")
    assert {"a.txt", "b.txt", "c.txt", "d.txt"} <= set(
        git(origin, "ls-tree", "--name-only", tip).split()
    )
    git(origin, "fsck", "--strict")
    git(clone, "fsck", "--strict")


def test_fast_forward_only_gate_refuses_a_moved_base(repos: Repos) -> None:
    origin, clone, forge = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    push_to_main(forge, "other.txt")
    moved = git(origin, "rev-parse", "main")
    status = settle((gated(clone, merge="ff"), [Watch("feat", "F", base, tree, True)]))["feat"]
    assert (status.state, status.cause) == ("CLOSED", "merge-conflict")
    assert status.detail.startswith("not a fast-forward")
    assert git(origin, "rev-parse", "main") == moved


def test_gate_fetches_and_merges_while_the_users_fetch_holds_the_base_ref(repos: Repos) -> None:
    origin, clone, forge = repos
    tree, base = start(clone, "feat")
    commit(tree, "f.txt", "f\n")
    push_to_main(forge, "other.txt")  # the gate must fetch to merge on top of this
    users = git(clone, "rev-parse", "refs/remotes/origin/main")
    lock = hold_lock(clone, "refs/remotes/origin/main")
    status = settle((gated(clone), [Watch("feat", "F", base, tree, True)]))
    assert status == {"feat": PrStatus(1, "MERGED", checks="passing")}
    tip = git(origin, "rev-parse", "main")
    assert git(clone, "rev-parse", "refs/chump/remotes/origin/main") == tip
    assert {"f.txt", "other.txt"} <= set(git(clone, "ls-tree", "--name-only", tip).split())
    assert git(clone, "rev-parse", "refs/remotes/origin/main") == users
    assert lock.exists()


def test_gate_on_a_local_base_branch_moves_only_that_branch(repos: Repos) -> None:
    origin, clone, _ = repos
    git(clone, "branch", "trunk", "main")
    tree, base = start(clone, "feat", "trunk")
    tip = commit(tree, "f.txt", "f\n")
    provider = GitProvider(clone, "trunk", GateConfig(PASS), IDENTITY)
    status = settle((provider, [Watch("feat", "F", base, tree, True)]))
    assert status == {"feat": PrStatus(1, "MERGED", checks="passing")}
    assert git(clone, "rev-parse", "trunk") == tip
    assert git(origin, "rev-parse", "main") == git(clone, "rev-parse", "main") == base
    other, other_base = start(clone, "other", "trunk")
    commit(other, "o.txt", "o\n")
    git(clone, "worktree", "add", "--quiet", str(clone.parent / "on-trunk"), "trunk")
    status = settle((provider, [Watch("other", "O", other_base, other, True)]))
    assert (status["other"].state, status["other"].cause) == ("CLOSED", "merge-failed")
    assert "checked out" in status["other"].detail
    assert git(clone, "rev-parse", "trunk") == tip


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"command": "pytest -q"}, "command"),
        ({"command": []}, "command"),
        ({"command": ["pytest", 3]}, "command"),
        ({"timeout": "1m"}, "command"),
        ({"command": ["pytest"], "timeout": "soon"}, "timeout"),
        ({"command": ["pytest"], "timeout": 0}, "timeout"),
        ({"command": ["pytest"], "merge": "rebase"}, "merge"),
        ({"command": ["pytest"], "colour": "blue"}, "colour"),
    ],
)
def test_bad_merge_gate_table_is_a_one_line_usage_error(
    tmp_path: Path, table: dict[str, object], key: str
) -> None:
    with pytest.raises(UsageError) as caught:
        _factory(Settings(repo_root=tmp_path, merge_gate=table))
    assert str(caught.value).startswith(f"[tool.chump.merge_gate] {key}: ")
    assert "\n" not in str(caught.value)


def test_factory_builds_the_gate_and_refuses_a_checked_out_local_base(repos: Repos) -> None:
    _, clone, _ = repos
    table = {"command": ["pytest"], "timeout": "90s", "merge": "ff"}
    provider = _factory(Settings(repo_root=clone, merge_gate=table))
    assert provider.gate is not None
    assert (provider.gate.command, provider.gate.timeout) == (("pytest",), 90.0)
    assert provider.gate.merger.mode == "ff"
    assert _factory(Settings(repo_root=clone)).gate is None
    with pytest.raises(UsageError, match="cannot move main: it is checked out in"):
        _factory(Settings(repo_root=clone, base_ref="main", merge_gate=table))


# --- end to end -----------------------------------------------------------------------------

AGENT = Path(__file__).parents[1] / "agent_scripts" / "commit_only.py"
GAPS = """\
gaps:
  - {id: GATE-A, title: first, priority: P1, effort: s}
  - {id: GATE-B, title: needs A, priority: P1, effort: s, depends_on: [GATE-A]}
  - {id: GATE-C, title: alone, priority: P2, effort: s}
"""
PYPROJECT = f"""\
[tool.chump]
spawner = "script"
pr_provider = "git"
max_parallel = 2
poll_interval = "50ms"
exit_grace = "20s"

[tool.chump.spawners.script]
command = ["{PY}", "{AGENT}"]

[tool.chump.merge_gate]
command = ["{PY}", "-c", "import sys; sys.exit(0)"]
timeout = "30s"
"""


def test_loop_ships_every_gap_through_the_gate(tmp_path: Path) -> None:
    origin, clone = make_origin(tmp_path)
    (clone / "docs/gaps.yaml").write_text(GAPS)
    (clone / "pyproject.toml").write_text(PYPROJECT)
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "backlog")
    git(clone, "push", "--quiet", "origin", "main")
    git(clone, "fetch", "--quiet", "origin")
    app, out = App.create({"repo_root": str(clone)}), io.StringIO()
    provider = app.provider()
    with Store.for_repo(clone) as store:
        orch = Orchestrator(app, store, app.spawner_factory(), provider, Progress(out, out))
        wake: Callable[[], None] = orch.wake.set
        provider.notify = wake  # type: ignore[attr-defined]
        orch.run()
    assert orch.finisher.counts["shipped"] == 3, out.getvalue()
    numbers = sorted(outcome.pr_number or 0 for _, _, outcome in orch.finisher.rows)
    assert numbers == [1, 2, 3]
    landed = set(git(origin, "ls-tree", "--name-only", "main").split())
    assert {"GATE-A.txt", "GATE-B.txt", "GATE-C.txt"} <= landed
    # the gate marked each gap done in the backlog it merged (the agents did not)
    merged = git(origin, "show", "main:docs/gaps.yaml").encode()
    assert {g.id: g.status for g in check_bytes(merged, "b").gaps} == {
        "GATE-A": "done",
        "GATE-B": "done",
        "GATE-C": "done",
    }


def test_the_gate_recorder_marks_a_gap_done_in_its_own_file_once(tmp_path: Path) -> None:
    from pytest_chump.providers.gate_record import BacklogRecorder

    _, clone = make_origin(tmp_path)
    gaps = clone / "docs/gaps"
    gaps.mkdir()
    (gaps / "A-1.yaml").write_text("- id: A-1  # the first\n  priority: P1\n")
    (gaps / "B-1.yaml").write_text("- id: B-1\n  status: done\n")
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "gaps")
    head = git(clone, "rev-parse", "HEAD")
    record = BacklogRecorder(clone, "docs/gaps", {"GIT_AUTHOR_NAME": "bot"})
    marked = record(head, "A-1")
    assert git(clone, "rev-parse", f"{marked}^") == head
    text = git(clone, "show", f"{marked}:docs/gaps/A-1.yaml")
    assert text.startswith("- id: A-1  # the first\n  priority: P1\n  status: done\n")
    assert git(clone, "diff", "--name-only", head, marked) == "docs/gaps/A-1.yaml"
    assert record(head, "B-1") == head  # the agent marked it done already
    assert record(head, "NOPE-1") == head  # not in the backlog
    assert record(marked, "A-1") == marked  # never twice
    assert len(git(clone, "worktree", "list").splitlines()) == 1  # its temporary ones are gone
