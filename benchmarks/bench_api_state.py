"""``GET /api/v1/state`` latency on a busy repository: 64 dispatches in flight (each with a
claude stream log whose last line the state renders) and 10,000 in history with their
routing outcomes and a full event table, served by the real ``chump serve`` server on a
loopback port, one new connection per request (as a browser polling would). Also ``/metrics``.

Target: p50 of ``/api/v1/state`` ≤ 20 ms.

Run: ``.venv/bin/python -m benchmarks.bench_api_state [--requests N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.report import record
from pytest_chump.loop.app import App
from pytest_chump.observe.server import serve
from pytest_chump.state.liveness import make_owner
from pytest_chump.state.store import Store

BACKENDS = ("claude", "codex", "aider")
OUTCOMES = ("shipped",) * 6 + ("ci_failed", "stalled", "killed", "race_abandoned")
STREAM = [
    {"type": "system", "subtype": "init", "session_id": "s"},
    {"type": "assistant", "message": {"content": [{"type": "text", "text": "Reading the code."}]}},
    {"type": "assistant", "message": {"content": [
        {"type": "tool_use", "name": "Bash", "input": {"command": "pytest -q tests/"}}]}},
]  # fmt: skip


def fill(repo: Path, running: int, history: int, seed: int = 1) -> None:
    """A store with ``history`` ended dispatches and ``running`` in flight (this process as
    their live orchestrator), plus routing outcomes and events, written in bulk."""
    rng = random.Random(seed)
    now = time.time()
    owner = make_owner()
    logs = repo / ".chump" / "logs"
    logs.mkdir(parents=True)
    with Store.for_repo(repo) as store:
        store.register_owner(owner)
        ended, routed = [], []
        for n in range(history):
            start = now - 86400 * 7 + n * 60
            backend, outcome = rng.choice(BACKENDS), rng.choice(OUTCOMES)
            ended.append(
                (f"H-{n}", f"chump/h-{n}", f"/w/h-{n}", backend, owner, "s", "P1", start,
                 start + rng.uniform(60, 3600), "ended", outcome, rng.uniform(0.1, 3.0))
            )  # fmt: skip
            routed.append((n + 1, backend, outcome, start))
        active = []
        for n in range(running):
            log = logs / f"R-{n}.log"
            log.write_text("".join(json.dumps(e) + "\n" for e in STREAM) * 50)
            active.append(
                (f"R-{n}", f"chump/r-{n}", f"/w/r-{n}", rng.choice(BACKENDS), owner, "m", "P1",
                 now - rng.uniform(0, 3000), str(log))
            )  # fmt: skip
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO dispatches(gap_id, branch, worktree, backend, owner, effort, "
                "priority, started_at, ended_at, state, outcome, cost_usd) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                ended,
            )
            conn.executemany(
                "INSERT INTO routing_outcomes(dispatch_id, backend, outcome, created_at) "
                "VALUES (?,?,?,?)",
                routed,
            )
            conn.executemany(
                "INSERT INTO dispatches(gap_id, branch, worktree, backend, owner, effort, "
                "priority, started_at, log_path, state) VALUES (?,?,?,?,?,?,?,?,?,'running')",
                active,
            )
            conn.executemany(
                "INSERT INTO events(at, owner, name, body) VALUES (?,?,?,?)",
                [(now, owner, "state", '{"event": "state"}')] * 20_000,
            )


def timed_gets(
    port: int, path: str, count: int, between: Callable[[], None] | None = None
) -> list[float]:
    took = []
    for _ in range(count):
        if between is not None:
            between()
        start = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        conn.close()
        took.append((time.perf_counter() - start) * 1000)
        assert answer.status == 200, answer.status
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--running", type=int, default=64)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        repo = Path(folder)
        fill(repo, args.running, args.history)
        server = serve(App.create({"repo_root": str(repo)}).settings, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = int(server.server_address[1])
        timed_gets(port, "/api/v1/state", 10)  # warm the page cache and the imports
        state = timed_gets(port, "/api/v1/state", args.requests)
        with Store.for_repo(repo) as store:

            def one_ends() -> None:  # the history changes: nothing cached can be reused
                store.conn.execute(
                    "UPDATE dispatches SET ended_at = ended_at + 1 "
                    "WHERE id = (SELECT MAX(id) FROM dispatches WHERE outcome IS NOT NULL)"
                )
                for log in (repo / ".chump" / "logs").glob("*.log"):
                    with log.open("a") as fh:
                        fh.write('{"type": "assistant", "message": {"content": []}}\n')

            changing = timed_gets(port, "/api/v1/state", args.requests // 2, one_ends)
        metrics = timed_gets(port, "/metrics", args.requests // 2)
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/api/v1/state")
        size = len(conn.getresponse().read())
        server.stop()

    def row(name: str, took: list[float]) -> str:
        p95 = statistics.quantiles(took, n=20)[-1]
        return f"| `{name}` | {statistics.median(took):.1f} ms | {p95:.1f} ms | {len(took)} |\n"

    body = (
        f"{args.running} dispatches in flight (each with a 50-event claude stream log), "
        f"{args.history:,} in history with their routing outcomes, 20,000 stored events; the "
        f"real server on loopback, a new connection per request; the state is {size / 1024:.0f} "
        "KiB of JSON.\n\n| route | p50 | p95 | requests |\n|---|---|---|---|\n"
        + row("/api/v1/state", state)
        + row("/api/v1/state (history and every log changed before each request)", changing)
        + row("/metrics", metrics)
        + "\nThe totals and routing statistics are recomputed when the history changed, each "
        "agent's last line when its log changed; the second row forces both every time. "
        "Target: p50 of `/api/v1/state` ≤ 20 ms.\n"
    )
    print(body)
    if not args.no_write:
        record("api_state", "`chump serve`: /api/v1/state latency on a busy repository", body)


if __name__ == "__main__":
    main()
