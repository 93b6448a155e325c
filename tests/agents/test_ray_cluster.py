"""The ``ray`` spawner against a real local Ray cluster: a head and worker nodes on loopback,
a bare origin reached by a ``file://`` URL, and scripted agents.

Skipped (not failed) when the ``ray`` extra is not installed; CI installs it and sets
``CHUMP_REQUIRE_RAY=1``, so there they fail rather than skip.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_chump.state.database import DB_NAME
from tests.chumpproc import ChumpProcess
from tests.gitrepos import AGENT, SIX_GAPS, git, make_origin
from tests.ray_cluster import Cluster, available
from tests.ray_shared import keep, run_root, shared
from tests.waiting import alive, until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not available() and not os.environ.get("CHUMP_REQUIRE_RAY"),
        reason="the ray extra is not installed",
    ),
]

PYPROJECT = """\
[tool.chump]
spawner = "ray"
pr_provider = "git"
max_parallel = {slots}
poll_interval = "100ms"
exit_grace = "30s"
retry_transient = 0
{extra}

[tool.chump.spawners.ray]
address = "{address}"
agent = ["{python}", "{agent}"]
cache_dir = "{cache}"
python = "{python}"
forward_env = ["AGENT_MODE", "AGENT_JOURNAL", "AGENT_GATE"]
{ray_extra}
"""


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Cluster:
    """The run's cluster (tests/ray_shared.py): a head with 2 agent slots and one more node
    with 2, so four jobs at once; other tests may use it at the same time."""
    return shared(run_root(request.config))


def make_repo(
    tmp_path: Path,
    cluster: Cluster,
    backlog: str = SIX_GAPS,
    slots: int = 4,
    extra: str = "",
    ray_extra: str = "",
) -> Path:
    _, clone = make_origin(tmp_path)
    (clone / "docs/gaps.yaml").write_text(backlog)
    (clone / "pyproject.toml").write_text(
        PYPROJECT.format(
            slots=slots,
            extra=extra,
            address=cluster.address,
            python=sys.executable,
            agent=AGENT,
            cache=tmp_path / "node-cache",
            ray_extra=ray_extra,
        )
    )
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "backlog")
    git(clone, "push", "--quiet", "origin", "main")
    git(clone, "fetch", "--quiet", "origin")
    return clone


ONE_GAP = "gaps:\n  - {id: R-1, title: one, priority: P1, effort: s}\n"


def chump(
    repo: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_chump.cli", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def outcomes(repo: Path) -> dict[str, list[tuple[str, str]]]:
    """gap -> [(outcome, cause)] of its dispatches, oldest first."""
    with sqlite3.connect(repo / ".chump" / DB_NAME) as db:
        rows = db.execute("SELECT gap_id, outcome, cause FROM dispatches ORDER BY id").fetchall()
    found: dict[str, list[tuple[str, str]]] = {}
    for gap, outcome, cause in rows:
        found.setdefault(gap, []).append((outcome or "", cause or ""))
    return found


def reflections(repo: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(repo / ".chump" / DB_NAME) as db:
        return db.execute("SELECT gap_id, outcome FROM reflections ORDER BY id").fetchall()


def test_six_gaps_with_dependencies_all_ship_through_ray(tmp_path: Path, cluster: Cluster) -> None:
    repo = make_repo(tmp_path, cluster)
    proc = chump(repo, "dispatch", "--no-dry-run", "--watch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = outcomes(repo)
    assert sorted(got) == ["E2E-A", "E2E-B", "E2E-C", "E2E-D", "E2E-E", "E2E-F"], proc.stdout
    assert all(runs == [("shipped", "")] for runs in got.values()), got
    assert sorted(g for g, _ in reflections(repo)) == sorted(got)
    shipped = git(tmp_path / "origin.git", "ls-tree", "--name-only", "main").split()
    assert {f"E2E-{x}.txt" for x in "ABCDEF"} <= set(shipped)
    # the agent's output reached the local log, the job's runner lines with it
    log = (repo / ".chump" / "logs" / "e2e-a.log").read_text()
    assert "shipped E2E-A" in log
    assert "ray-job: " in log
    assert not (repo / ".chump" / "worktrees").exists() or not any(
        (repo / ".chump" / "worktrees").iterdir()
    )


def ended(run: ChumpProcess) -> None:
    """A chump process a failed assertion left running is killed."""
    if run.proc.poll() is None:
        run.proc.kill()
        run.proc.wait(timeout=30)


def agent_pids(journal: Path) -> list[int]:
    """The agents started so far (each journals its pid when it starts)."""
    try:
        lines = (journal / "pids").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [int(line.split()[0]) for line in lines if line.strip()]


def test_the_deadline_stops_the_job(tmp_path: Path, cluster: Cluster) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    # effort s: soft deadline 1200 s x 0.0025 = 3 s; the job is stopped at twice that
    repo = make_repo(tmp_path, cluster, ONE_GAP, slots=1, extra="deadline_scale = 0.0025")
    env = {"AGENT_MODE": "sleep", "AGENT_JOURNAL": str(journal)}
    proc = chump(repo, "dispatch", "--no-dry-run", "--watch", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert outcomes(repo) == {"R-1": [("killed", "timeout")]}, proc.stdout
    assert reflections(repo) == [("R-1", "killed")]
    started = agent_pids(journal)  # none when the job was stopped before its agent began
    assert len(started) <= 1
    assert until(lambda: not any(alive(p) for p in started), timeout=60), "an agent still runs"


def test_a_worker_lost_mid_job_ends_the_dispatch_killed_worker_lost(
    tmp_path: Path, cluster: Cluster, request: pytest.FixtureRequest
) -> None:
    doomed = f"doomed-{os.getpid()}"  # only this test's job goes to the node it loses
    node = cluster.add_node(agents=0, cpus=1, extra={doomed: 1})
    keep(run_root(request.config), node)
    journal = tmp_path / "journal"
    journal.mkdir()
    repo = make_repo(
        tmp_path, cluster, ONE_GAP, slots=1, ray_extra=f'resources = {{"{doomed}" = 1}}'
    )
    env = {"AGENT_MODE": "sleep", "AGENT_JOURNAL": str(journal)}
    run = ChumpProcess(repo, "dispatch", "--no-dry-run", "--watch", env=env)
    try:
        assert until(lambda: bool(agent_pids(journal)), timeout=120), "the agent never started"
        (agent,) = agent_pids(journal)
        node.lose()  # the machine dies: every process on it, the job's and the agent's too
        assert until(lambda: not alive(agent), timeout=30)
        assert run.finish(timeout=180) == 0, run.text
    finally:
        ended(run)
    assert outcomes(repo) == {"R-1": [("killed", "worker-lost")]}, run.text
    assert reflections(repo) == [("R-1", "killed")]


def test_a_restarted_orchestrator_reattaches_to_its_ray_job(
    tmp_path: Path, cluster: Cluster
) -> None:
    journal, gate = tmp_path / "journal", tmp_path / "gate"
    journal.mkdir()
    repo = make_repo(tmp_path, cluster, ONE_GAP, slots=1)
    env = {"AGENT_MODE": "gate", "AGENT_GATE": str(gate), "AGENT_JOURNAL": str(journal)}
    first = ChumpProcess(repo, "dispatch", "--no-dry-run", "--watch", env=env)
    try:
        assert until(lambda: bool(agent_pids(journal)), timeout=120), "the agent never started"
        first.proc.send_signal(signal.SIGKILL)  # the orchestrator crashes; the job runs on
        first.proc.wait(timeout=30)
    finally:
        ended(first)
    second = ChumpProcess(repo, "dispatch", "--no-dry-run", "--watch", env=env)
    try:
        second.wait_for("RESUMED: R-1", timeout=60)
        gate.write_text("go")
        assert second.finish(timeout=180) == 0, second.text
    finally:
        ended(second)
    assert outcomes(repo) == {"R-1": [("shipped", "")]}, second.text
    assert reflections(repo) == [("R-1", "shipped")]
    assert len(agent_pids(journal)) == 1  # the same agent: nothing was started twice
    log = (repo / ".chump" / "logs" / "r-1.log").read_text()
    assert log.count("waiting at the gate for R-1") == 1  # no line copied twice
    assert "shipped R-1" in log
