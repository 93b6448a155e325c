"""The ``ray`` spawner against a real local Ray cluster: a head and worker nodes on loopback,
a bare origin reached by a ``file://`` URL, and scripted agents.

Skipped (not failed) when the ``ray`` extra is not installed; CI installs it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitrepos import AGENT, SIX_GAPS, git, make_origin
from tests.ray_cluster import Cluster, available
from tests.waiting import until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not available(), reason="the ray extra is not installed"),
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
forward_env = ["AGENT_MODE", "AGENT_JOURNAL"]
{ray_extra}
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head with 2 agent slots and one more node with 2: four jobs at once."""
    ray = Cluster(head_agents=2)
    try:
        ray.add_node(agents=2)
        yield ray
    finally:
        ray.stop()


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


def chump(repo: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
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
    with sqlite3.connect(repo / ".chump" / "state.db") as db:
        rows = db.execute("SELECT gap_id, outcome, cause FROM dispatches ORDER BY id").fetchall()
    found: dict[str, list[tuple[str, str]]] = {}
    for gap, outcome, cause in rows:
        found.setdefault(gap, []).append((outcome or "", cause or ""))
    return found


def reflections(repo: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(repo / ".chump" / "state.db") as db:
        return db.execute("SELECT gap_id, outcome FROM reflections ORDER BY id").fetchall()


def test_six_gaps_with_dependencies_all_ship_through_ray(
    tmp_path: Path, cluster: Cluster
) -> None:
    repo = make_repo(tmp_path, cluster)
    proc = chump(repo, "dispatch", "--no-dry-run", "--watch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = outcomes(repo)
    assert sorted(got) == ["E2E-A", "E2E-B", "E2E-C", "E2E-D", "E2E-E", "E2E-F"], proc.stdout
    assert all(runs == [("shipped", "")] for runs in got.values()), got
    assert sorted(g for g, _ in reflections(repo)) == sorted(got)
    shipped = git(repo, "ls-tree", "--name-only", "origin/main").split()
    assert {f"E2E-{x}.txt" for x in "ABCDEF"} <= set(shipped)
    # the agent's output reached the local log, the job's runner lines with it
    log = (repo / ".chump" / "logs" / "e2e-a.log").read_text()
    assert "shipped E2E-A" in log
    assert "=== chump " in log and "ray-job: " in log
    assert not (repo / ".chump" / "worktrees").exists() or not any(
        (repo / ".chump" / "worktrees").iterdir()
    )
