"""``chump status`` and ``chump cleanup``: read-only status; cleanup that never destroys work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_chump.cli import main
from pytest_chump.dispatch import worktrees
from pytest_chump.dispatch.workspaces import PooledWorktrees
from pytest_chump.state.liveness import make_owner, owner_alive
from pytest_chump.state.store import Store
from tests.gitrepos import git, make_origin


def chump(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().out


def dead_owner() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return make_owner(proc.pid)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    return make_origin(tmp_path)[1]


def leftover(clone: Path, gap_id: str, outcome: str, owner: str, torn_down: bool = True) -> Path:
    """A dispatch that ended but whose worktree was left behind, with uncommitted work in it."""
    slug = gap_id.lower()
    prepared = worktrees.prepare(
        clone, clone / ".chump/worktrees" / slug, f"chump/{slug}", "origin/main"
    )
    (prepared.worktree / "notes.txt").write_text("unsaved work\n")
    with Store.for_repo(clone) as store:
        store.acquire_lease(gap_id, owner)
        did = store.add_dispatch(gap_id, prepared.branch, str(prepared.worktree), "fake", owner)
        store.finish_dispatch(did, outcome, cause="timeout" if outcome != "shipped" else "")
        if torn_down and owner_alive(owner):  # its orchestrator released the lease
            store.release_lease(gap_id, owner)
    return prepared.worktree


def test_status_without_a_store_creates_nothing(
    capsys: pytest.CaptureFixture[str], clone: Path
) -> None:
    code, out = chump(capsys, "status", "--repo-root", str(clone))
    assert code == 0
    assert out.strip() == "no dispatches yet (no .chump/chump.db)"
    assert not (clone / ".chump").exists()


def test_status_shows_in_flight_leases_and_outcomes(
    capsys: pytest.CaptureFixture[str], clone: Path
) -> None:
    leftover(clone, "OLD-1", "stalled", make_owner(), torn_down=False)
    with Store.for_repo(clone) as store:
        gone = dead_owner()
        store.acquire_lease("RUN-1", gone)
        did = store.add_dispatch("RUN-1", "chump/run-1", str(clone / "wt"), "claude", gone)
        store.update_dispatch(did, state="silent", pid=4242)
    code, out = chump(capsys, "status", "--repo-root", str(clone))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "in flight (1):"
    assert "RUN-1" in lines[1]
    assert "silent" in lines[1]
    assert "resume with --watch" in lines[1]
    assert lines[2].startswith("leases (1): OLD-1")
    assert "OLD-1" in lines[-1]
    assert "stalled" in lines[-1]
    assert "cause:timeout" in lines[-1]


def test_cleanup_commits_leftover_work_then_removes_worktrees(
    capsys: pytest.CaptureFixture[str], clone: Path
) -> None:
    stalled = leftover(clone, "KEEP-1", "stalled", dead_owner())
    code, out = chump(capsys, "cleanup", "--repo-root", str(clone))
    assert code == 0
    assert "released stale lease of KEEP-1" in out
    assert f"removed worktree {stalled}" in out
    assert not stalled.exists()
    assert git(clone, "show", "chump/keep-1:notes.txt") == "unsaved work"  # work kept
    with Store.for_repo(clone) as store:
        assert store.live_leases() == {}


def test_cleanup_deletes_only_merged_branches_of_shipped_dispatches(
    capsys: pytest.CaptureFixture[str], clone: Path
) -> None:
    shipped = leftover(clone, "DONE-1", "shipped", make_owner())
    unmerged = leftover(clone, "FAIL-1", "ci_failed", make_owner())
    git(shipped, "add", "-A")
    git(shipped, "commit", "-qm", "the shipped work")
    git(clone, "push", "-q", "origin", "chump/done-1:main")
    git(clone, "fetch", "-q", "origin")
    code, out = chump(capsys, "cleanup", "--repo-root", str(clone))
    assert code == 0, out
    assert "deleted merged branch chump/done-1" in out
    assert not git(clone, "branch", "--list", "chump/done-1")
    assert git(clone, "branch", "--list", "chump/fail-1")
    assert not unmerged.exists()


def test_cleanup_without_a_store(capsys: pytest.CaptureFixture[str], clone: Path) -> None:
    assert chump(capsys, "cleanup", "--repo-root", str(clone)) == (
        0,
        "nothing to clean (no .chump/chump.db)\n",
    )


def test_cleanup_never_removes_the_worktree_of_a_retry_in_flight(
    capsys: pytest.CaptureFixture[str], clone: Path
) -> None:
    """A gap whose first dispatch ended is dispatched again, in the same path: cleanup must
    leave the running retry's worktree alone (its agent would lose its work)."""
    path = leftover(clone, "RETRY-1", "stalled", dead_owner())
    with Store.for_repo(clone) as store:  # the retry: leased, recorded, running
        me = make_owner()
        assert store.acquire_lease("RETRY-1", me)
        store.add_dispatch("RETRY-1", "chump/retry-1", str(path), "fake", me)
    code, out = chump(capsys, "cleanup", "--repo-root", str(clone))
    assert code == 0
    assert f"kept {path}: in use by a dispatch in flight (RETRY-1)" in out
    assert (path / "notes.txt").read_text() == "unsaved work\n"


def test_cleanup_keeps_a_worktree_whose_gap_is_leased_but_not_yet_recorded(
    capsys: pytest.CaptureFixture[str], clone: Path
) -> None:
    path = leftover(clone, "LEASE-1", "stalled", dead_owner())
    with Store.for_repo(clone) as store:  # a dispatch between its lease and its record
        assert store.acquire_lease("LEASE-1", make_owner())
    _, out = chump(capsys, "cleanup", "--repo-root", str(clone))
    assert f"kept {path}: in use by a dispatch in flight (LEASE-1)" in out
    assert path.exists()


def test_a_symlink_cannot_send_worktrees_out_of_the_repository(
    capsys: pytest.CaptureFixture[str], clone: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (clone / ".chump").mkdir(exist_ok=True)
    (clone / ".chump/worktrees").symlink_to(outside)
    (clone / "docs/gaps.yaml").write_text("gaps:\n  - {id: W-1, priority: P1}\n")
    status = main(["dispatch", "--repo-root", str(clone), "--no-dry-run", "--spawner", "fake"])
    err = capsys.readouterr().err.splitlines()
    assert status == 2
    assert err == [
        f"chump: error: worktree_root: {clone / '.chump/worktrees'} leads outside the repository "
        f"(to {outside.resolve()}); a symbolic link on the way?"
    ]
    assert list(outside.iterdir()) == []


def test_cleanup_leaves_the_worktree_pool_alone_and_empties_it_with_pool(
    capsys: pytest.CaptureFixture[str], clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shipped dispatch's worktree parked in the pool: cleanup keeps the parked worktree
    (no dispatch owns it) yet deletes the merged branch (a parked worktree does not hold it);
    ``--pool`` removes the parked worktrees."""
    ws = PooledWorktrees(clone, size=1)
    prepared = ws.prepare(clone / ".chump/worktrees/p-1", "chump/p-1", "origin/main")
    git(prepared.worktree, "commit", "-q", "--allow-empty", "-m", "the shipped work")
    git(clone, "push", "-q", "origin", "chump/p-1:main")
    git(clone, "fetch", "-q", "origin")
    owner = make_owner()
    with Store.for_repo(clone) as store:
        store.acquire_lease("P-1", owner)
        did = store.add_dispatch("P-1", prepared.branch, str(prepared.worktree), "fake", owner)
        store.finish_dispatch(did, "shipped")
        store.release_lease("P-1", owner)
    assert ws.remove(prepared.worktree, "save") == ""
    parked = clone / ".chump/pool/0"
    monkeypatch.chdir(clone)
    code, out = chump(capsys, "cleanup", "--repo-root", str(clone))
    assert code == 0, out
    assert "1 worktree(s) parked in the pool (.chump/pool); --pool removes them" in out
    assert "deleted merged branch chump/p-1" in out
    assert (parked / "README").exists()
    code, out = chump(capsys, "cleanup", "--repo-root", str(clone), "--pool")
    assert code == 0, out
    assert "removed 1 worktree(s) parked in the pool" in out
    assert not parked.exists()
    assert worktrees.list_worktrees(clone) == []
