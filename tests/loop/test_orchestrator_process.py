"""The orchestrator as a real process: SIGINT teardown, resume after SIGKILL, racing twins."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from pytest_chump.state.database import DB_NAME
from pytest_chump.state.liveness import pid_alive
from pytest_chump.state.store import Store
from tests.chumpproc import ChumpProcess
from tests.gitrepos import (
    git,
    repo,  # noqa: F401  (fixture)
)

EXECUTE = ("dispatch", "--no-dry-run", "--watch")


def gaps(*ids: str) -> str:
    return "gaps:\n" + "".join(f"  - {{id: {i}, priority: P1, effort: s}}\n" for i in ids)


def test_sigint_stops_agents_removes_their_worktrees_and_releases_leases(
    repo: Path,
) -> None:
    (repo / "docs/gaps.yaml").write_text(gaps("INT-1", "INT-2", "INT-3"))
    chump = ChumpProcess(repo, *EXECUTE, "--kill-grace", "5s", env={"AGENT_MODE": "sleep"})
    chump.wait_for("DISPATCHED:", count=2)
    chump.signal(signal.SIGINT)
    assert chump.finish() == 130, chump.text
    with Store.for_repo(repo) as store:
        rows = store.dispatches()
        # nothing new after the signal (two starts on two workers are recorded as each ends)
        assert sorted(r.gap_id for r in rows) == ["INT-1", "INT-2"]
        assert {(r.outcome, r.cause) for r in rows} == {("killed", "interrupted")}
        assert not any(pid_alive(r.pid) for r in rows if r.pid)
        assert store.live_leases() == {}
        assert len(store.reflections()) == 2
    assert list((repo / ".chump/worktrees").iterdir()) == []
    assert "killed=2" in chump.text


def test_restart_after_sigkill_resumes_with_one_reflection_per_dispatch(
    repo: Path,
) -> None:
    (repo / "docs/gaps.yaml").write_text(gaps("RES-1", "RES-2", "RES-3"))
    gate = repo.parent / "go"
    env = {"AGENT_MODE": "gate", "AGENT_GATE": str(gate)}
    first = ChumpProcess(repo, *EXECUTE, env=env)
    first.wait_for("DISPATCHED:", count=2)
    first.signal(signal.SIGKILL)
    first.finish()
    gate.write_text("go")
    second = ChumpProcess(repo, *EXECUTE, env=env)
    second.wait_for("RESUMED:", count=2)
    assert second.finish() == 0, second.text
    assert "shipped=3" in second.text
    again = ChumpProcess(repo, *EXECUTE, env=env)
    assert again.finish() == 0, again.text
    with Store.for_repo(repo) as store:
        rows = store.dispatches()
        assert sorted(r.gap_id for r in rows) == ["RES-1", "RES-2", "RES-3"]
        assert all(r.outcome == "shipped" for r in rows)
        assert sorted(r["gap_id"] for r in store.reflections()) == ["RES-1", "RES-2", "RES-3"]


@pytest.mark.parametrize("run", range(2))
def test_two_orchestrators_started_together_never_dispatch_a_gap_twice(
    repo: Path,
    run: int,
) -> None:
    ids = [f"TWIN-{n}" for n in range(8)]
    (repo / "docs/gaps.yaml").write_text(gaps(*ids))
    git(repo, "commit", "--quiet", "-am", "twins")
    twins = [ChumpProcess(repo, *EXECUTE) for _ in range(2)]
    codes = [t.finish(timeout=120) for t in twins]
    assert codes == [0, 0], "\n---\n".join(t.text for t in twins)
    with Store.for_repo(repo) as store:
        dispatched = sorted(r.gap_id for r in store.dispatches())
        assert dispatched == sorted(ids)
        assert len(store.reflections()) == len(ids)
    git(repo, "fetch", "--quiet", "origin")
    landed = set(git(repo, "ls-tree", "--name-only", "origin/main").split())
    assert {f"{i}.txt" for i in ids} <= landed


def test_twins_never_retry_a_gap_the_other_just_finished(repo: Path) -> None:
    """A lease is released when a dispatch ends; the twin still running must not take the
    gap again: a gap is dispatched at most once while both runs last."""
    ids = [f"FAIL-{n}" for n in range(6)]
    (repo / "docs/gaps.yaml").write_text(gaps(*ids))
    twins = [ChumpProcess(repo, *EXECUTE, env={"AGENT_MODE": "fail"}) for _ in range(2)]
    for twin in twins:
        twin.finish(timeout=120)
    with Store.for_repo(repo) as store:
        dispatched = sorted(r.gap_id for r in store.dispatches())
    assert dispatched == sorted(ids), "\n---\n".join(t.text for t in twins)


def test_sighup_tears_down_like_sigterm(repo: Path) -> None:
    (repo / "docs/gaps.yaml").write_text(gaps("HUP-1"))
    chump = ChumpProcess(repo, *EXECUTE, "--kill-grace", "5s", env={"AGENT_MODE": "sleep"})
    chump.wait_for("DISPATCHED:")
    chump.signal(signal.SIGHUP)
    assert chump.finish() == 129, chump.text
    with Store.for_repo(repo) as store:
        (row,) = store.dispatches()
        assert (row.outcome, row.cause) == ("killed", "interrupted")
        assert not pid_alive(row.pid or 0)


def test_a_closed_stdout_pipe_never_stops_supervision(repo: Path) -> None:
    """``chump dispatch --watch | head -1``: the reader leaves after one line; the agents are
    still watched to their outcome and recorded."""
    import subprocess
    import sys

    (repo / "docs/gaps.yaml").write_text(gaps("PIPE-1", "PIPE-2"))
    argv = [sys.executable, "-m", "pytest_chump.cli", *EXECUTE]
    with subprocess.Popen(
        argv, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        proc.stdout.close()  # as `head -1` does
        assert proc.wait(timeout=120) == 0
    with Store.for_repo(repo) as store:
        assert sorted((r.gap_id, r.outcome) for r in store.dispatches()) == [
            ("PIPE-1", "shipped"),
            ("PIPE-2", "shipped"),
        ]


def stop_between_writes(proc: ChumpProcess, db: Path) -> None:
    """SIGSTOP ``proc`` outside a write transaction: stopped inside one it would hold the
    database's write lock, and nothing could take its dispatch over (SQLite has one writer).
    A hang inside a transaction is another failure than the one tested here."""
    for _ in range(50):
        proc.signal(signal.SIGSTOP)
        conn = sqlite3.connect(db, timeout=0.5, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # stopped mid-write: let it finish, stop it again
            proc.signal(signal.SIGCONT)
        finally:
            conn.close()
    raise AssertionError("the orchestrator always held the write lock")


def test_a_stopped_orchestrator_loses_its_dispatch_to_a_live_one(
    repo: Path, tmp_path: Path
) -> None:
    """SIGSTOP (hung): past lease_ttl a live orchestrator takes over the lease and the agent,
    and sees it to its outcome; the stopped one, continued, lets go without touching it."""
    gate = tmp_path / "go"
    env = {"AGENT_MODE": "gate", "AGENT_GATE": str(gate)}
    (repo / "docs/gaps.yaml").write_text(gaps("HUNG-1"))
    first = ChumpProcess(repo, *EXECUTE, "--lease-ttl", "1h", env=env)
    first.wait_for("DISPATCHED:")
    stop_between_writes(first, repo / ".chump" / DB_NAME)
    try:
        with Store.for_repo(repo) as store:  # its last beat, long ago (no waiting in tests)
            store.conn.execute("UPDATE owners SET beat_at = 1")
        second = ChumpProcess(repo, *EXECUTE, "--lease-ttl", "30s", env=env)
        second.wait_for("RESUMED: HUNG-1")
        gate.write_text("go\n")
        assert second.finish(timeout=120) == 0, second.text
        assert "OUTCOME: HUNG-1 shipped" in second.text
    finally:
        first.signal(signal.SIGCONT)
    assert first.finish(timeout=120) == 0, first.text
    assert "LOST: HUNG-1 (taken over by" in first.text
    assert "OUTCOME: HUNG-1" not in first.text
    with Store.for_repo(repo) as store:
        (row,) = store.dispatches()
        assert row.outcome == "shipped"
        assert len(store.reflections()) == 1


def test_a_secret_of_the_orchestrator_s_shell_does_not_leak_when_another_shell_resumes(
    repo: Path, tmp_path: Path
) -> None:
    """The first orchestrator's shell has a token its agent prints; it is killed, and one
    started from a shell without that variable sees the agent to its end. The value is in no
    log, record, sink or command output."""
    value = "tok-" + "9f3c2a7e5b1d4c6e8a0b"
    gate = tmp_path / "go"
    env = {
        "AGENT_MODE": "gate",
        "AGENT_GATE": str(gate),
        "AGENT_AFTER_GATE": "fail",
        "AGENT_SAY": "DEPLOY_TOKEN",
        "CHUMP_SINKS": "sqlite,jsonl",
    }
    (repo / "docs/gaps.yaml").write_text(gaps("LEAK-1"))
    first = ChumpProcess(repo, *EXECUTE, env={**env, "DEPLOY_TOKEN": value})
    first.wait_for("DISPATCHED:")
    first.signal(signal.SIGKILL)
    first.finish()
    gate.write_text("go\n")
    second = ChumpProcess(repo, *EXECUTE, env=env)  # DEPLOY_TOKEN is not in this shell
    second.wait_for("RESUMED: LEAK-1")
    second.finish(timeout=120)
    assert "OUTCOME: LEAK-1 killed" in second.text
    outputs = [first.text, second.text]
    for command in (("status",), ("reflections", "--json")):
        shown = ChumpProcess(repo, *command, env=env)
        shown.finish()
        outputs.append(shown.text)
    assert "ERROR: leaking [REDACTED]" in (repo / ".chump/logs/leak-1.stderr.log").read_text()
    stored = [p.read_bytes() for p in (repo / ".chump").rglob("*") if p.is_file()]
    assert all(value.encode() not in data for data in stored)
    assert all(value not in text for text in outputs)
