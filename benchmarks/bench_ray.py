"""The ``ray`` spawner: throughput over 1, 2 and 4 agent nodes, and its per-dispatch overhead.

A backlog of 16 independent gaps (effort s) whose agent (``benchmarks/sleep_agent.py``) sleeps
a fixed time (``--sleep``, 20 s), then commits and lands its work on ``origin/main``;
``chump dispatch --no-dry-run --watch`` with the ``git`` provider until all 16 shipped.

- **Local**: the ``command`` spawner, ``max_parallel = 2``, real worktrees on this machine.
  Run first, before any Ray process exists.
- **Ray, N agent nodes**: a local cluster (``benchmarks/ray_cluster.py``) whose head has no
  agent slots and N worker nodes of 2 slots each; ``max_parallel = 2 x N``. One cluster, grown
  from 1 to 2 to 4 nodes between runs; each run has a fresh repository (so a cold node cache).

Wall time is from launching ``chump`` to the 16th outcome recorded; throughput is 16 / wall,
and its ratio against one node is the scaling figure (target >= 0.8 x N; the ideal,
``ceil(16 / slots)`` waves x the sleep, gives exactly N). A dispatch's overhead is its time in
the store (``started_at`` -> ``ended_at``) minus the sleep, split by the agent's own time
stamps into before the agent runs (lease, workspace, spawn), the agent's landing (commit,
rebase, push) and after it exits (its exit seen, the provider's poll, teardown). The host's
CPU busy share over each run says how much the 2 cores were contended.

Skipped, with a message, when the ``ray`` extra is not installed. Every Ray process is killed
at the end (each node's session and what it started), and the run checks none is left.

Run: ``.venv/bin/python -m benchmarks.bench_ray [--sleep S] [--nodes 1,2,4] [--no-write]``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.ray_cluster import Cluster, available, descendants
from benchmarks.report import record
from benchmarks.repos import git
from pytest_chump.state.database import DB_NAME

GAPS = 16
SLOTS_PER_NODE = 2
LOCAL_SLOTS = 2
POLL = 0.5
AGENT = Path(__file__).with_name("sleep_agent.py")
TITLE = "Ray spawner: throughput over agent nodes, per-dispatch overhead"

SETTINGS = """\
[tool.chump]
spawner = "{spawner}"
pr_provider = "git"
max_parallel = {slots}
poll_interval = "{poll}s"
exit_grace = "60s"
retries = 0
retry_transient = 0

[tool.chump.spawners.script]
command = ["{python}", "{agent}", "{sleep}"]

[tool.chump.spawners.ray]
address = "{address}"
agent = ["{python}", "{agent}", "{sleep}"]
cache_dir = "{cache}"
python = "{python}"
"""


@dataclass
class Run:
    """One ``chump dispatch --watch`` over the backlog, as the store and logs tell it."""

    label: str
    nodes: int  # Ray agent nodes; 0 for the local spawner
    slots: int
    sleep: float
    wall: float = 0.0  # launch -> last outcome recorded
    exited: float = 0.0  # launch -> chump's exit
    cpu_busy: float = 0.0  # share of the host's CPU time busy during the run
    load: float = 0.0  # the host's 1-minute load average, mean over the run
    shipped: int = 0
    overhead: list[float] = field(default_factory=list)  # per dispatch: in the store - sleep
    before: list[float] = field(default_factory=list)  # started_at -> agent-start
    in_ray: list[float] = field(default_factory=list)  # Ray job submitted -> agent-start
    landing: list[float] = field(default_factory=list)  # agent-end - agent-start - sleep
    after: list[float] = field(default_factory=list)  # agent-end -> ended_at

    @property
    def ideal(self) -> float:
        """Waves of full slots times the sleep: the wall time of a spawner that costs nothing."""
        return math.ceil(GAPS / self.slots) * self.sleep

    @property
    def throughput(self) -> float:
        """Gaps shipped per minute."""
        return GAPS / self.wall * 60


def backlog() -> str:
    lines = [
        f"  - {{id: RAY-{i:02d}, title: gap {i}, priority: P1, effort: s}}"
        for i in range(1, GAPS + 1)
    ]
    return "gaps:\n" + "\n".join(lines) + "\n"


def make_repo(root: Path, spawner: str, slots: int, sleep: float, address: str = "") -> Path:
    """``root/work``, a clone of the bare ``root/origin.git``, with the backlog and settings
    committed and pushed; the Ray nodes keep their cache under ``root/node-cache``."""
    origin, clone = root / "origin.git", root / "work"
    git(root, "init", "--quiet", "--bare", "-b", "main", str(origin))
    git(root, "clone", "--quiet", str(origin), str(clone))
    git(clone, "symbolic-ref", "HEAD", "refs/heads/main")
    (clone / "docs").mkdir()
    (clone / "docs/gaps.yaml").write_text(backlog())
    (clone / "pyproject.toml").write_text(
        SETTINGS.format(
            spawner=spawner,
            slots=slots,
            poll=POLL,
            python=sys.executable,
            agent=AGENT,
            sleep=sleep,
            address=address,
            cache=root / "node-cache",
        )
    )
    git(clone, "add", "-A")
    git(clone, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "--quiet", "-m", "backlog")
    git(clone, "push", "--quiet", "-u", "origin", "main")
    git(clone, "fetch", "--quiet", "origin")
    return clone


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the host so far (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


class LoadSampler:
    """The host's 1-minute load average, sampled every few seconds on a thread while in use:
    the machine may be shared, and a load well above its 2 cores explains slow runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.every, self.samples = every, [load_average()]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(load_average())

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(load_average())

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def dispatch(run: Run, repo: Path, address: str = "") -> None:
    """Run ``chump dispatch --no-dry-run --watch`` in ``repo`` to the end; fill ``run`` (with
    each Ray job's submission time from the cluster at ``address``, when given)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    waves = math.ceil(GAPS / run.slots)
    timeout = waves * run.sleep * 4 + 900
    output = repo.parent / "chump.out"
    busy0, total0 = cpu_times()
    launched = time.time()
    with output.open("wb") as out, LoadSampler() as load:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest_chump.cli", "dispatch", "--no-dry-run", "--watch"],
            cwd=repo,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=timeout,
            check=False,
        )
    run.exited = time.time() - launched
    run.load = load.mean
    busy1, total1 = cpu_times()
    run.cpu_busy = (busy1 - busy0) / max(total1 - total0, 1)
    text = output.read_text(errors="replace")
    with contextlib.closing(sqlite3.connect(repo / ".chump" / DB_NAME)) as db:
        rows = db.execute(
            "SELECT gap_id, outcome, started_at, ended_at, log_path FROM dispatches"
        ).fetchall()
    run.shipped = sum(1 for _, outcome, *_ in rows if outcome == "shipped")
    if proc.returncode != 0 or run.shipped != GAPS or len(rows) != GAPS:
        tail = "\n".join(text.splitlines()[-40:])
        raise SystemExit(
            f"{run.label}: chump exited {proc.returncode}, {run.shipped} of {GAPS} shipped "
            f"in {len(rows)} dispatches:\n{tail}"
        )
    run.wall = max(ended for *_, ended, _ in rows) - launched
    submitted = submission_times(address) if address else {}
    for _, _, started, ended, log_path in rows:
        run.overhead.append(ended - started - run.sleep)
        stamps = agent_stamps(Path(log_path or ""))
        if "agent-start" in stamps and "agent-end" in stamps:
            run.before.append(stamps["agent-start"] - started)
            run.landing.append(stamps["agent-end"] - stamps["agent-start"] - run.sleep)
            run.after.append(ended - stamps["agent-end"])
            job = job_id(Path(log_path or ""))
            if job in submitted:
                run.in_ray.append(stamps["agent-start"] - submitted[job])


def submission_times(address: str) -> dict[str, float]:
    """Each job of the cluster at ``address``: when it was submitted (Ray's ``start_time``)."""
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(address).list_jobs()
    return {str(j.submission_id): j.start_time / 1000 for j in jobs if j.start_time}


def job_id(log: Path) -> str:
    """The Ray job a dispatch ran as, from the job's first runner line in its log."""
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("=== chump ") and " job: " in line:
                return line.split(" job: ", 1)[1].split()[0]
    return ""


def agent_stamps(log: Path) -> dict[str, float]:
    """The ``agent-start``/``agent-end`` time stamps the agent printed into its log."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            word, _, value = line.partition(" ")
            if word in ("agent-start", "agent-end"):
                with contextlib.suppress(ValueError):
                    found[word] = float(value)
    return found


def one_run(label: str, nodes: int, slots: int, sleep: float, address: str = "") -> Run:
    """A fresh repository and one full dispatch of the backlog through it."""
    run = Run(label, nodes, slots, sleep)
    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        spawner = "ray" if nodes else "script"
        repo = make_repo(root, spawner, slots, sleep, address)
        dispatch(run, repo, address)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{label}: wall {run.wall:.1f} s (ideal {run.ideal:.0f} s), exit {run.exited:.1f} s, "
        f"median overhead {statistics.median(run.overhead):.2f} s, CPU busy {run.cpu_busy:.0%}, "
        f"load {run.load:.1f}",
        flush=True,
    )
    return run


def ray_runs(node_counts: list[int], sleep: float) -> list[Run]:
    """One cluster (a head with no agent slots), grown to each node count in turn; every
    process of it killed at the end, and checked gone."""
    runs: list[Run] = []
    cluster = Cluster(head_agents=0)
    processes: set[int] = set()
    try:
        for count in node_counts:
            while len(cluster.nodes) - 1 < count:
                cluster.add_node(agents=SLOTS_PER_NODE, cpus=2)
            for node in cluster.nodes:
                processes.update(descendants(node.proc.pid))
            runs.append(
                one_run(
                    f"ray, {count} node{'s' if count > 1 else ''}",
                    count,
                    SLOTS_PER_NODE * count,
                    sleep,
                    cluster.address,
                )
            )
    finally:
        for node in cluster.nodes:
            if node.proc.poll() is None:
                processes.update(descendants(node.proc.pid))
        cluster.stop()
    left = [pid for pid in processes if running(pid)]
    if left:
        print(f"warning: Ray processes left after the cluster stopped: {left}", file=sys.stderr)
    return runs


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "n/a"


def p90(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]:.2f}"


def body(local: Run, ray: list[Run], sleep: float) -> str:
    """The BENCHMARKS.md section: the scaling table, the overhead table, what they mean."""
    base = next((r for r in ray if r.nodes == 1), None)

    def ratio(r: Run) -> str:
        if base is None:
            return "| n/a | | "
        got, target = base.wall / r.wall, 0.8 * r.nodes
        return f"| **{got:.2f}** | {target:.1f} | {'met' if got >= target else 'missed'} "

    scaling = "".join(
        f"| {r.nodes} | {r.slots} | {r.wall:.1f} s | {r.ideal:.0f} s | {r.ideal / r.wall:.2f} "
        f"| {r.throughput:.1f} {ratio(r)}| {r.cpu_busy:.0%} | {r.load:.1f} |\n"
        for r in ray
    )
    overhead = "".join(
        f"| {r.label} | {r.slots} | {r.wall:.1f} s | **{fmt(r.overhead)} s** | {p90(r.overhead)} s "
        f"| {fmt(r.before)} s | {fmt(r.in_ray) + ' s' if r.in_ray else ''} | {fmt(r.landing)} s "
        f"| {fmt(r.after)} s | {r.exited - r.wall:.1f} s | {r.load:.1f} |\n"
        for r in [local, *ray]
    )
    notes = []
    if base is not None:
        notes.append(
            f"Per dispatch, Ray with one node costs "
            f"**{statistics.median(base.overhead) - statistics.median(local.overhead):+.2f} s** "
            f"(median) more than the local spawner on the same {LOCAL_SLOTS} slots; "
            f"{fmt(base.in_ray)} s of it pass between the job's submission and its agent's start "
            "(Ray creating the job's supervisor actor, a new worker process, with the job's "
            "uploaded working directory; then `ray_job.py` fetching the node cache and making the "
            "worktree). After the last outcome, `chump` exits "
            f"{base.exited - base.wall:.1f} s later with Ray ({local.exited - local.wall:.1f} s "
            "locally): it waits for the end of each job's log, which Ray's log stream delivers "
            "seconds after the job ended (at most `CLOSE_GRACE`, 20 s)."
        )
        missed = [r for r in ray if base.wall / r.wall < 0.8 * r.nodes]
        if missed:
            notes.append(
                "Missed scaling targets ("
                + ", ".join(f"{r.nodes} nodes: {base.wall / r.wall:.2f}" for r in missed)
                + f"): every node, job and agent shares this host's {os.cpu_count()} cores, so "
                "more nodes add CPU work (each node's raylet and agents, a Python job supervisor "
                "per job, more agents at once) without adding cores: the part of a dispatch "
                "before its agent runs grows with the number of jobs starting at once (see the "
                "overhead rows), while a cluster of separate machines would add cores with its "
                "nodes. CPU busy and load say how contended the host was (other work on it "
                "counts too)."
            )
    return (
        f"{GAPS} independent gaps (effort s); each agent sleeps {sleep:g} s, then commits, "
        "rebases and pushes its work to `origin/main` (`benchmarks/sleep_agent.py`); "
        "`chump dispatch --no-dry-run --watch`, the `git` provider polling every "
        f"{POLL:g} s, until all {GAPS} shipped. Ray: a local cluster on this machine, a head "
        f"with no agent slots and N worker nodes of {SLOTS_PER_NODE} agent slots each, "
        f"`max_parallel = {SLOTS_PER_NODE} x N`; the nodes share this host's disk, so one node "
        "cache (and its lock). Wall: from launching `chump` to the last outcome recorded; "
        f"ideal: `ceil({GAPS} / slots)` waves x {sleep:g} s. Throughput vs 1 node: one node's "
        "wall / N nodes' wall (the ideal gives exactly N). CPU busy: the share of the host's "
        f"{os.cpu_count()} cores in use over the run; load: its 1-minute load average, mean "
        "over the run.\n\n"
        "| agent nodes | slots | wall | ideal | ideal / wall | gaps per minute "
        "| throughput vs 1 node | target (0.8 x N) | met | CPU busy | load |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"{scaling}\n"
        f"Per-dispatch overhead: each dispatch's time in the store (`started_at` -> `ended_at`) "
        f"minus the {sleep:g} s sleep, median over the {GAPS}; split by the agent's own time "
        "stamps into before it runs (lease, workspace: a local worktree, or the job's "
        "submission, start, node cache fetch and worktree; of which, for Ray, from the job's "
        "submission as the cluster recorded it to the agent's start), its landing (commit, "
        "rebase, push "
        "to `main`; the same script everywhere) and after it exits (exit seen, the job's "
        "branch push and log, the provider's poll, teardown). The local spawner: the `command` "
        f"spawner, `max_parallel = {LOCAL_SLOTS}`, measured before any Ray process ran.\n\n"
        "| spawner | slots | wall | overhead per dispatch (median) | p90 | before the agent "
        "| of which job submitted -> agent | landing | after its exit | chump exits after "
        "the last outcome | load |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"{overhead}\n" + "\n\n".join(notes) + "\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # a minute: agents run for minutes; with 20 s, Ray's start of each job (about 2-10 s on
    # one 2-core host, growing with the jobs starting at once) decides the 4-node figure
    parser.add_argument("--sleep", type=float, default=60.0, help="seconds each agent sleeps")
    parser.add_argument("--nodes", default="1,2,4", help="comma-separated Ray agent node counts")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = parser.parse_args()
    if not available():
        print("skipped: the ray extra is not installed (pip install 'pytest-chump[ray]')")
        return 0
    counts = sorted({int(n) for n in args.nodes.split(",") if n.strip()})
    local = one_run("local (`command`)", 0, LOCAL_SLOTS, args.sleep)
    ray = ray_runs(counts, args.sleep)
    text = body(local, ray, args.sleep)
    print(text)
    if not args.no_write:
        record("ray", TITLE, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
