"""A real local Ray cluster for the ``ray`` spawner's tests and benchmarks: a head and worker
nodes, each a ``ray start --block`` process in its own session on loopback, stopped (or
killed, to lose a node) by signalling that session.

Readiness is read from the head's own output (the GCS and Jobs API addresses it prints), and
a node's arrival from the cluster's node list: no fixed sleeps.

It lives in ``benchmarks/`` because benchmarks never import the test package, while tests may
import benchmarks (``tests/ray_cluster.py`` re-exports it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")
START_TIMEOUT = 120.0
AGENT_PORTS = (
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
)
_GCS = re.compile(r"ray start --address='([0-9.]+:\d+)'")
_API = re.compile(r"RAY_API_SERVER_ADDRESS='(http://[0-9.]+:\d+)'")


def available() -> bool:
    """Whether the ``ray`` extra (with the Jobs API) is installed in this environment."""
    try:
        import ray.job_submission  # noqa: F401
    except ImportError:
        return False
    return RAY.exists()


class Node:
    """One ``ray start --block`` process (and every process of its session)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def lose(self) -> None:
        """The machine dies: every process the node started, whatever its session (a job's
        entrypoint and its agent run in sessions of their own), killed in one sweep."""
        victims = descendants(self.proc.pid)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.stop(signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        """Signal the node's session; SIGKILL after ``timeout``."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # stragglers of the session
            os.killpg(self.proc.pid, signal.SIGKILL)


def node_env() -> dict[str, str]:
    """The environment of every node's ``ray start``."""
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_JOB_STOP_WAIT_TIME_S": "3",
        "PYTHONDONTWRITEBYTECODE": "1",
        # a dead node is noticed within seconds (default: 15 s and more)
        "RAY_health_check_initial_delay_ms": "2000",
        "RAY_health_check_period_ms": "1000",
        "RAY_health_check_timeout_ms": "2000",
        "RAY_health_check_failure_threshold": "3",
        # a loaded machine starts a node's Python agents slowly (default: 15 s, then the
        # raylet aborts)
        "RAY_agent_register_timeout_ms": "120000",
        "RAY_raylet_start_wait_time_s": "120",
    }
    env.pop("RAY_ADDRESS", None)
    for name in [n for n in env if n.startswith("PYTEST_")]:
        del env[name]  # Ray takes a test process's nodes for its own unit tests
    return env


class Cluster:
    """A head (with ``head_agents`` agent slots) plus nodes added by :meth:`add_node`."""

    root: Path
    env: dict[str, str]
    nodes: list[Node]
    gcs: str
    address: str

    @classmethod
    def attach(cls, root: Path, gcs: str, address: str) -> Cluster:
        """A running cluster another process started (it stops it): nodes can be added."""
        cluster = cls.__new__(cls)
        cluster.root, cluster.env, cluster.nodes = root, node_env(), []
        cluster.gcs, cluster.address = gcs, address
        return cluster

    def __init__(self, head_agents: int = 2, cpus: int = 2) -> None:
        # a short folder: Ray's unix sockets live under it (at most 107 bytes a path)
        self.root = Path(tempfile.mkdtemp(prefix="chray", dir="/tmp"))
        self.env = node_env()
        self.nodes: list[Node] = []
        self.head = self._start(
            [
                "--head",
                "--port=0",
                "--dashboard-host=127.0.0.1",
                "--dashboard-port=0",
                "--include-dashboard=true",
                f"--temp-dir={self.root / 't'}",
            ],
            head_agents,
            cpus,
            "head",
        )
        started = until(
            lambda: (
                bool(_GCS.search(self.head.text()) and _API.search(self.head.text()))
                or self.head.proc.poll() is not None
            ),
            timeout=START_TIMEOUT,
        )
        if not started or self.head.proc.poll() is not None:
            text = self.head.text()[-3000:]
            self.stop()
            raise AssertionError(f"the Ray head did not start:\n{text}")
        text = self.head.text()
        self.gcs = "127.0.0.1:" + _match(_GCS, text).rpartition(":")[2]
        self.address = _match(_API, text)

    def _start(
        self,
        extra: list[str],
        agents: int,
        cpus: int,
        name: str,
        resources: dict[str, float] | None = None,
    ) -> Node:
        argv = [
            str(RAY),
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={cpus}",
            f"--resources={json.dumps({'agent': agents, **(resources or {})})}",
            "--disable-usage-stats",
            # nodes share this host: each agent of each node needs ports of its own
            *(f"--{name}={free_port()}" for name in AGENT_PORTS),
            *extra,
        ]
        node = Node(argv, self.env, self.root / f"{name}.log")
        self.nodes.append(node)
        return node

    def add_node(
        self, agents: int = 2, cpus: int = 2, extra: dict[str, float] | None = None
    ) -> Node:
        """A worker node joined to the head (``extra``: more custom resources); returns once
        the cluster counts it."""
        before = self.alive_nodes()
        name = f"node{len(self.nodes)}"
        node = self._start([f"--address={self.gcs}"], agents, cpus, name, extra)
        joined = until(
            lambda: self.alive_nodes() > before or node.proc.poll() is not None,
            timeout=START_TIMEOUT,
        )
        assert joined, node.text()[-2000:]
        assert node.proc.poll() is None, node.text()[-2000:]
        return node

    def alive_nodes(self) -> int:
        from ray.util.state import list_nodes

        try:
            nodes = list_nodes(address=self.address, filters=[("state", "=", "ALIVE")])
        except Exception:
            return 0
        return len(nodes)

    def stop(self) -> None:
        """Kill every node at once (a graceful ``ray stop`` takes a minute): its session and
        whatever it started in sessions of their own (a job's agent, when a run was cut
        short), as :meth:`Node.lose` does."""
        for node in reversed(self.nodes):
            if node.proc.poll() is None:
                node.lose()
            else:
                node.stop(signal.SIGKILL)
        if not os.environ.get("CHUMP_KEEP_RAY_LOGS"):
            shutil.rmtree(self.root, ignore_errors=True)


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, children first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found[::-1]


def until(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether ``condition`` became true within ``timeout`` seconds (looked at every 20 ms).

    The same as ``tests.waiting.until``, which a benchmark may not import."""
    step = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return True
        step.wait(0.02)
    return condition()


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _match(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    assert found is not None
    return found.group(1)
