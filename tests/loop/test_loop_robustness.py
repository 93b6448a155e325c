"""The loop under adverse conditions: signals mid-refill, crashed or concurrent orchestrators,
faulty plugins, stubborn and silent agents, bad configuration found before any dispatch."""

from __future__ import annotations

import dataclasses
import io
import json
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from pytest_chump import hookimpl
from pytest_chump.cli import main
from pytest_chump.core.errors import PluginError
from pytest_chump.core.protocols import PrStatus, Spawner, SpawnHandle, SpawnRequest, Watch
from pytest_chump.dispatch.dispatcher import TAKEN_OVER
from pytest_chump.dispatch.workspaces import GitWorktrees
from pytest_chump.dispatch.worktrees import Prepared
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.state.liveness import pid_alive
from pytest_chump.state.store import LeaseLost, Store
from tests.chumpproc import ChumpProcess
from tests.gitrepos import repo  # noqa: F401  (fixture)
from tests.waiting import until


def gaps(*ids: str) -> str:
    return "gaps:\n" + "".join(f"  - {{id: {i}, priority: P1, effort: s}}\n" for i in ids)


def build(repo: Path, **flags: object) -> tuple[App, Store, io.StringIO]:
    app = App.create({"repo_root": str(repo), **flags})
    return app, Store.for_repo(repo), io.StringIO()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_signal_during_a_refill_starts_nothing_more(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    """On the loop thread, the start under way is the last; with workers, the starts already
    spawning their agent at that instant (at most one per worker) finish and are stopped at
    once; none of the others creates an agent."""
    (repo / "docs/gaps.yaml").write_text(gaps(*(f"SIG-{n}" for n in range(6))))
    monkeypatch.setenv("AGENT_MODE", "sleep")
    app, store, out = build(repo, max_parallel=6, kill_grace="5s", dispatch_workers=workers)
    factory = app.spawner_factory()
    holder: list[Orchestrator] = []

    def spawner(name: str) -> Spawner:
        real = factory(name)

        class SignalledDuringSpawn:
            name = real.name

            def spawn(self, request: SpawnRequest) -> SpawnHandle:
                handle = real.spawn(request)
                holder[0].stop("interrupted by SIGINT")  # the signal lands mid-refill
                return handle

        return SignalledDuringSpawn()

    with store:
        orch = Orchestrator(app, store, spawner, app.provider(), Progress(out, out))
        holder.append(orch)
        orch.run()
        rows = store.dispatches()
    started = [r.gap_id for r in rows]
    if workers == 0:
        assert started == ["SIG-0"], out.getvalue()
    else:
        assert 1 <= len(started) <= workers, out.getvalue()
        assert set(started) <= {"SIG-0", "SIG-1"}, out.getvalue()  # the two being started
    assert {(r.outcome, r.cause) for r in rows} == {("killed", "interrupted")}
    for n in range(6):  # a start cancelled before its agent undid its worktree
        if f"SIG-{n}" not in started:
            assert not (repo / ".chump" / "worktrees" / f"sig-{n}").exists(), n


def test_a_gap_of_a_crashed_orchestrator_is_not_dispatched_again(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (repo / "docs/gaps.yaml").write_text(gaps("ORPHAN-1", "FREE-1"))
    app, store, out = build(repo)
    with store:
        gone = "another-host:1:1"  # its agent may still run there: the gap is not free
        store.acquire_lease("ORPHAN-1", gone)
        store.add_dispatch("ORPHAN-1", "chump/orphan-1", str(repo / "wt"), "script", gone)
        orch = Orchestrator(app, store, app.spawner_factory(), app.provider(), Progress(out, out))
        orch.watch = False
        orch.run()
        started = [r.gap_id for r in store.dispatches()]
    assert started == ["ORPHAN-1", "FREE-1"]


class FlakyProvider:
    """Raises a plain RuntimeError (a plugin bug) on its first poll, then reports MERGED."""

    name = "flaky"

    def __init__(self) -> None:
        self.calls = 0

    def poll(self, watches: Sequence[Watch]) -> Mapping[str, PrStatus]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("provider plugin bug")
        return {w.branch: PrStatus(7, "MERGED") for w in watches}


def test_a_provider_raising_anything_is_transient(repo: Path) -> None:
    (repo / "docs/gaps.yaml").write_text(gaps("FLAKY-1"))
    app, store, out = build(repo, poll_interval="10ms")
    provider = FlakyProvider()
    with store:
        orch = Orchestrator(app, store, app.spawner_factory(), provider, Progress(out, out))
        orch.run()
    assert orch.finisher.counts["shipped"] == 1
    assert out.getvalue().count("PR provider: RuntimeError: provider plugin bug") == 1
    assert provider.calls >= 2


def test_an_unknown_sink_fails_before_anything_is_dispatched(repo: Path) -> None:
    app, store, out = build(repo, sinks="sqlite,nope")
    with store, pytest.raises(PluginError, match=r"unknown sink 'nope' \(valid: "):
        Orchestrator(app, store, app.spawner_factory(), app.provider(), Progress(out, out))
    with Store.for_repo(repo) as store:
        assert store.dispatches() == []


def test_a_silent_agent_is_flagged_not_killed(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (repo / "docs/gaps.yaml").write_text(gaps("QUIET-1"))
    monkeypatch.setenv("AGENT_MODE", "sleep")
    app, store, out = build(repo, silence_alert="0.3s", deadline_scale="0.001", kill_grace="0.2s")
    heard: list[Mapping[str, object]] = []

    class Listener:
        @hookimpl
        def chump_notify(self, event: Mapping[str, object]) -> None:
            heard.append(event)

    app.pm.register(Listener())
    with store:
        orch = Orchestrator(app, store, app.spawner_factory(), app.provider(), Progress(out, out))
        orch.run()
    lines = out.getvalue().splitlines()
    silent = [e for e in heard if e["event"] == "agent-silent"]
    assert [(e["gap_id"], e["message"]) for e in silent] == [
        ("QUIET-1", "QUIET-1: no output for 0.3s")
    ]
    assert "STATE: QUIET-1 silent" in lines  # flagged first (at 0.3 s) ...
    assert lines.index("STATE: QUIET-1 silent") < next(
        i for i, line in enumerate(lines) if line.startswith("OUTCOME: QUIET-1 killed")
    )  # ... killed only by the deadline ladder (2 x 1.2 s)


def test_sigterm_exits_143_and_sigkill_stops_an_agent_that_ignores_sigterm(
    repo: Path,
) -> None:
    (repo / "docs/gaps.yaml").write_text(gaps("STUB-1"))
    chump = ChumpProcess(
        repo,
        "dispatch",
        "--no-dry-run",
        "--watch",
        "--kill-grace",
        "0.5s",
        env={"AGENT_MODE": "stubborn"},
    )
    chump.wait_for("DISPATCHED:")
    log = repo / ".chump/logs/stub-1.log"
    while "stubborn and ready" not in (log.read_text() if log.exists() else ""):
        chump.proc.poll()  # the agent installs its SIGTERM handler before we signal
    chump.signal(signal.SIGTERM)
    assert chump.finish() == 143, chump.text
    with Store.for_repo(repo) as store:
        (row,) = store.dispatches()
    assert (row.outcome, row.cause) == ("killed", "interrupted")
    assert row.exit_code == -signal.SIGKILL  # TERM was ignored: the ladder's KILL stopped it


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--base-ref", "origin/nope"], "--base-ref: 'origin/nope' is not a commit in"),
        (["--deadline-scale", "nan"], "--deadline-scale: expected a number, got 'nan'"),
        (["--kill-grace", "inf"], "--kill-grace: expected a duration"),
    ],
)
def test_mistakes_are_found_before_any_state_is_created(
    capsys: pytest.CaptureFixture[str],
    repo: Path,
    argv: list[str],
    message: str,
) -> None:
    status = main(["dispatch", "--no-dry-run", "--repo-root", str(repo), *argv])
    err = capsys.readouterr().err.splitlines()
    assert status == 2
    assert len(err) == 1
    assert message in err[0]
    assert not (repo / ".chump/chump.db").exists()


def test_a_directory_that_is_not_a_repository(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/gaps.yaml").write_text(gaps("A-1"))
    assert main(["dispatch", "--no-dry-run", "--repo-root", str(tmp_path)]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("not a git repository (agents work in git worktrees)")
    )
    assert not (tmp_path / ".chump").exists()


def test_waiting_out_a_kill_grace_sleeps(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stubborn agent (ignores SIGTERM) past its deadline: the loop wakes a few times a second
    during the grace, not hundreds (it used to spin on a deadline already passed)."""
    from pytest_chump.loop.clock import Clock

    class CountingClock(Clock):
        waits = 0

        def wait(self, event: object, timeout: float) -> None:
            CountingClock.waits += 1
            super().wait(event, timeout)  # type: ignore[arg-type]

    (repo / "docs/gaps.yaml").write_text(gaps("STUB-1"))
    monkeypatch.setenv("AGENT_MODE", "stubborn")
    app, store, out = build(repo, deadline_scale="0.0002", kill_grace="2s", poll_interval="30s")
    with store:
        orch = Orchestrator(
            app,
            store,
            app.spawner_factory(),
            app.provider(),
            Progress(out, out),
            clock=CountingClock(),
        )
        orch.run()
    assert orch.finisher.counts["killed"] == 1, out.getvalue()
    assert CountingClock.waits < 25, CountingClock.waits  # ~2.5 s of run: deadline + grace


def test_a_dispatch_taken_over_while_it_starts_is_left_to_its_new_owner(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """This orchestrator was silent past lease_ttl between recording the dispatch and
    recording its agent: the other one owns it now. No agent is released and nothing of the
    dispatch (its worktree, its lease) is undone under the new owner."""
    (repo / "docs/gaps.yaml").write_text(gaps("TAKEN-1"))
    monkeypatch.setenv("AGENT_MODE", "sleep")
    app, store, out = build(repo, dispatch_workers=0)  # its spawner uses this store
    factory = app.spawner_factory()
    started: list[int] = []

    def spawner(name: str) -> Spawner:
        real = factory(name)

        class TakenMeanwhile:
            name = real.name

            def spawn(self, request: SpawnRequest) -> SpawnHandle:
                (row,) = store.unfinished()
                store.update_dispatch(row.id, owner="other-host:1:1")
                assert request.on_started is not None
                on_started = request.on_started

                def record(pid: int) -> None:
                    started.append(pid)
                    on_started(pid)

                return real.spawn(dataclasses.replace(request, on_started=record))

        return TakenMeanwhile()

    with store:
        orch = Orchestrator(app, store, spawner, app.provider(), Progress(out, out))
        orch.run()
        (row,) = store.dispatches()
    assert "DISPATCH-FAILED: TAKEN-1: another orchestrator took the dispatch over" in out.getvalue()
    assert row.owner == "other-host:1:1"
    assert row.outcome is None  # the new owner ends it
    assert (repo / ".chump/worktrees/taken-1").is_dir()  # not rolled back under its owner
    assert not pid_alive(started[0])  # its supervisor never released an agent


def test_the_heartbeat_goes_on_while_the_loop_is_busy(repo: Path) -> None:
    """A before_run step blocks the loop; the heartbeat thread still beats, so another
    orchestrator does not take the dispatch over."""
    gate = repo.parent / "go"
    wait = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)"
    (repo / "pyproject.toml").write_text(
        (repo / "pyproject.toml")
        .read_text()
        .replace(
            "[tool.chump.spawners.script]",
            f'[tool.chump.worktree]\nbefore_run = ["{sys.executable}", "-c", {json.dumps(wait)}]'
            "\n\n[tool.chump.spawners.script]",
        )
    )
    (repo / "docs/gaps.yaml").write_text(gaps("BUSY-1"))
    first = ChumpProcess(repo, "dispatch", "--no-dry-run", "--watch", "--lease-ttl", "0.4s")
    with Store.for_repo(repo) as store:
        assert until(lambda: bool(store.unfinished()))  # recorded; the loop is in before_run
        store.conn.execute("UPDATE owners SET beat_at = 1")  # as if it had been silent long
        assert until(
            lambda: store.conn.execute("SELECT MIN(beat_at) FROM owners").fetchone()[0] > 1
        )
    second = ChumpProcess(repo, "dispatch", "--no-dry-run", "--watch", "--lease-ttl", "0.4s")
    second.finish()
    gate.write_text("go\n")
    assert first.finish() == 0, first.text
    assert "RESUMED" not in second.text, second.text
    assert "OUTCOME: BUSY-1 shipped" in first.text, first.text


def test_a_gap_taken_over_before_its_dispatch_is_recorded_gets_no_second_agent(
    repo: Path,
) -> None:
    """Stopped after creating the worktree, this orchestrator lost the lease: on waking it
    records nothing, starts nothing, and leaves the worktree to the new owner."""
    (repo / "docs/gaps.yaml").write_text(gaps("LATE-1"))
    app, store, out = build(repo, dispatch_workers=0)  # its spawner uses this store
    real = GitWorktrees(repo, app.settings.bot_identity)

    class StolenMeanwhile:
        def prepare(self, worktree: Path, branch: str, base_ref: str) -> Prepared:
            prepared = real.prepare(worktree, branch, base_ref)
            store.conn.execute("UPDATE leases SET owner='other-host:1:1'")  # taken over
            return prepared

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    with store:
        orch = Orchestrator(
            app,
            store,
            app.spawner_factory(),
            app.provider(),
            Progress(out, out),
            workspaces=StolenMeanwhile(),  # type: ignore[arg-type]
        )
        orch.run()
        assert store.dispatches() == []  # no row, no agent
    assert f"DISPATCH-FAILED: LATE-1: {TAKEN_OVER}" in out.getvalue()
    assert (repo / ".chump/worktrees/late-1").is_dir()  # the new owner's now


def test_add_dispatch_needs_the_lease_when_asked(repo: Path) -> None:
    with Store.for_repo(repo) as store:
        store.acquire_lease("L-1", "someone-else:1:1")
        with pytest.raises(LeaseLost):
            store.add_dispatch("L-1", "b", "w", "script", "me:2:2", require_lease=True)
        assert store.dispatches() == []
