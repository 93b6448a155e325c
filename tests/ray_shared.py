"""One local Ray cluster for the whole test run, whichever xdist worker needs it first.

Starting a head and a node costs about 25 s of a 2-core machine; each worker starting its own
would cost that again per worker. The first test that asks starts it (under a file lock in the
run's shared temporary folder) and writes where it is; later tests, in any worker, attach to
it. Nodes are their own sessions, so the cluster outlives the worker that started it; the
controller stops it when the whole run ends (``pytest_sessionfinish`` in tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from pytest_chump.state.locks import file_lock
from tests.ray_cluster import Cluster, Node

STATE = "ray-cluster.json"


def run_root(config: pytest.Config) -> Path:
    """The folder every process of this test run shares (the controller's base temp)."""
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    return Path(base).parent if hasattr(config, "workerinput") else Path(base)


def shared(root: Path) -> Cluster:
    """The run's cluster (a head and one node, 2 agent slots each), started on first use."""
    with file_lock(root / "ray-cluster.lock"):
        state = root / STATE
        if state.exists():
            info = json.loads(state.read_text())
            return Cluster.attach(Path(info["root"]), info["gcs"], info["address"])
        cluster = Cluster(head_agents=2)
        try:
            cluster.add_node(agents=2)
        except BaseException:
            cluster.stop()
            raise
        pids = [node.proc.pid for node in cluster.nodes]
        info = {"root": str(cluster.root), "gcs": cluster.gcs, "address": cluster.address}
        state.write_text(json.dumps({**info, "pids": pids}))
        return cluster


def keep(root: Path, node: Node) -> None:
    """A node a test added: stopped with the cluster if the test did not stop it."""
    with file_lock(root / "ray-cluster.lock"):
        state = root / STATE
        info = json.loads(state.read_text())
        info["pids"].append(node.proc.pid)
        state.write_text(json.dumps(info))


def stop_shared(root: Path) -> None:
    """Kill every node of the run's cluster (when one was started) and remove its files."""
    state = root / STATE
    if not state.exists():
        return
    info = json.loads(state.read_text())
    for pid in reversed(info["pids"]):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    if not os.environ.get("CHUMP_KEEP_RAY_LOGS"):
        shutil.rmtree(info["root"], ignore_errors=True)
    state.unlink()
