"""The state store: schema versioning, leases (atomic across processes), dispatch records."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_chump.core.errors import ChumpError
from pytest_chump.state.liveness import make_owner, owner_alive, proc_start_ticks
from pytest_chump.state.schema import MIGRATIONS
from pytest_chump.state.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.for_repo(tmp_path) as s:
        yield s  # type: ignore[misc]


def dead_owner() -> str:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return make_owner(proc.pid)


def test_schema_is_versioned_and_state_dir_ignored(tmp_path: Path) -> None:
    with Store.for_repo(tmp_path) as s:
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (tmp_path / ".chump/.gitignore").read_text().splitlines()[-1] == "*"
    Store.for_repo(tmp_path).close()  # reopening migrates nothing and keeps data


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / ".chump/chump.db"
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(ChumpError, match="newer than this chump knows"):
        Store.for_repo(tmp_path)


def test_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / ".chump/chump.db"
    db.parent.mkdir()
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ChumpError, match="the state database is corrupt"):
        Store.for_repo(tmp_path)


def test_owner_liveness() -> None:
    assert owner_alive(make_owner())
    assert not owner_alive(dead_owner())
    assert owner_alive("another-host:1:1")


def test_this_process_is_known_without_proc_but_a_recycled_pid_is_not() -> None:
    """Its own id is answered from memory; the same pid with another start time is a process
    that is gone (this pid recycled), as for any other owner; a forked child is its own."""
    me = make_owner()
    assert (
        me
        == make_owner(os.getpid())
        == f"{socket.gethostname()}:{os.getpid()}:{proc_start_ticks(os.getpid())}"
    )
    assert owner_alive(me)
    assert not owner_alive(f"{socket.gethostname()}:{os.getpid()}:1")
    assert proc_start_ticks(0) == ""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover  (the child)
        os.write(write, f"{make_owner()} {owner_alive(me)}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_owner, parent_alive = pipe.read().split()
    os.waitpid(child, 0)
    assert child_owner.split(":")[1] == str(child)
    assert child_owner != me
    assert parent_alive == "True"


def test_lease_held_by_live_owner_is_refused(store: Store) -> None:
    me, other = make_owner(), make_owner(__import__("os").getppid())
    assert store.acquire_lease("A-1", me)
    assert store.acquire_lease("A-1", me)  # re-entrant for the same owner
    assert not store.acquire_lease("A-1", other)
    store.release_lease("A-1", me)
    assert store.acquire_lease("A-1", other)


def test_stale_lease_is_taken_over_and_pruned(store: Store) -> None:
    gone = dead_owner()
    assert store.acquire_lease("A-1", gone)
    assert store.acquire_lease("B-1", gone)
    assert store.live_leases() == {}
    assert store.acquire_lease("A-1", make_owner())
    assert store.prune_stale_leases() == ["B-1"]
    assert set(store.live_leases()) == {"A-1"}


def test_dispatch_finishes_exactly_once(store: Store) -> None:
    owner = make_owner()
    store.acquire_lease("A-1", owner)
    did = store.add_dispatch("A-1", "chump/a-1", "/wt", "fake", owner, effort="s", priority="P1")
    assert store.unfinished()[0].id == did
    store.update_dispatch(did, pid=123, state="running", meta={"k": 1})
    assert store.finish_dispatch(did, "shipped", pr_number=7)
    assert not store.finish_dispatch(did, "killed")
    row = store.dispatch(did)
    assert row is not None
    assert (row.outcome, row.pr_number, row.state, row.meta_dict) == (
        "shipped",
        7,
        "ended",
        {"k": 1},
    )
    assert store.unfinished() == []
    assert store.shipped_ids() == {"A-1"}


RACER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_chump.state.liveness import make_owner
    from pytest_chump.state.store import Store
    root, count = Path(sys.argv[1]), int(sys.argv[2])
    store = Store.for_repo(root)
    owner = make_owner()
    print("ready", flush=True)
    sys.stdin.readline()  # the start signal: both racers begin together
    won = [f"G-{i}" for i in range(count) if store.acquire_lease(f"G-{i}", owner)]
    print(" ".join(won), flush=True)
    sys.stdin.readline()  # stay alive (and so keep the leases live) until told to exit
    """
)


def race(tmp_path: Path, script: str, args: list[str]) -> list[set[str]]:
    """Start one racer per ``args`` entry, let them all go at once; what each printed."""
    Store.for_repo(tmp_path).close()
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path), arg],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for arg in args
    ]
    for proc in racers:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in racers:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    won = []
    for proc in racers:
        assert proc.stdout is not None
        won.append(set(proc.stdout.readline().split()))
    for proc in racers:
        proc.communicate("exit\n")  # they hold their leases (stay alive) until now
        assert proc.returncode == 0
    return won


def test_two_processes_racing_never_take_the_same_lease(tmp_path: Path) -> None:
    count = 300
    won = race(tmp_path, RACER, [str(count)] * 2)
    assert not won[0] & won[1]
    assert won[0] | won[1] == {f"G-{i}" for i in range(count)}


OPENER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_chump.state.store import Store
    root = Path(sys.argv[1])
    sys.stdin.readline()
    with Store.for_repo(root) as store:
        store.acquire_lease("X", "h:1:1")
    print("ok", flush=True)
    """
)


@pytest.mark.parametrize("attempt", range(3))
def test_processes_creating_the_database_at_once_all_succeed(tmp_path: Path, attempt: int) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    for proc in procs:  # release them all together
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [o[0].strip() for o in outputs] == ["ok"] * 8, outputs


CAPACITY_RACER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_chump.state.liveness import make_owner
    from pytest_chump.state.store import Store
    root, name = Path(sys.argv[1]), sys.argv[2]
    store = Store.for_repo(root)
    owner = make_owner()
    print("ready", flush=True)
    sys.stdin.readline()
    won = [g for g in (f"{name}-{i}" for i in range(50)) if store.claim(g, owner, 3) == "ok"]
    print(" ".join(won), flush=True)
    sys.stdin.readline()
    """
)


def test_orchestrators_racing_for_slots_never_exceed_max_parallel(tmp_path: Path) -> None:
    """max_parallel bounds the repository, not each process: four racers, capacity 3."""
    won = race(tmp_path, CAPACITY_RACER, [f"R{n}" for n in range(4)])
    assert sum(len(claims) for claims in won) == 3


def test_an_ended_dispatch_frees_its_slot_before_its_teardown(tmp_path: Path) -> None:
    with Store.for_repo(tmp_path) as store:
        me = make_owner()
        assert store.claim("A", me, 1) == "ok"
        assert store.claim("B", me, 1) == "full"
        row = store.add_dispatch("A", "chump/a", str(tmp_path), "x", me)
        store.finish_dispatch(row, "shipped")  # its lease is released only at teardown
        assert store.claim("B", me, 1) == "ok"
