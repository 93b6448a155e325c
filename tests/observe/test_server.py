"""``chump serve`` against a real run: a real server on an ephemeral loopback port, a real
orchestrator process and scripted agents held at a gate until the test lets them ship."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pytest_chump.core.config import Settings
from pytest_chump.core.schemas import schema
from pytest_chump.loop.app import App
from pytest_chump.observe.server import Server, serve
from pytest_chump.state.liveness import make_owner
from pytest_chump.state.store import Store
from tests.chumpproc import ChumpProcess
from tests.gitrepos import repo  # noqa: F401  (fixture)
from tests.waiting import until

TWO = "gaps:\n  - {id: S-1, priority: P1, effort: s}\n  - {id: S-2, priority: P2, effort: m}\n"


class Client:
    """Plain HTTP requests to the server (a new connection each, as browsers may)."""

    def __init__(self, server: Server, token: str = "") -> None:
        self.host, self.port = str(server.server_address[0]), int(server.server_address[1])
        self.token = token

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = dict(headers or {})
        if self.token:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        try:
            conn.request(method, path, body=body or None, headers=sent)
            answer = conn.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()
        finally:
            conn.close()

    def json(self, path: str, status: int = 200, method: str = "GET", **kw: Any) -> Any:
        got, headers, body = self.request(method, path, **kw)
        assert got == status, body
        assert headers["Content-Type"] == "application/json"
        return json.loads(body)


def _settings(repo: Path) -> Settings:
    return App.create({"repo_root": str(repo)}).settings


@pytest.fixture
def served(repo: Path) -> Iterator[Server]:
    server = serve(_settings(repo), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop()
    thread.join(timeout=10)


class Events:
    """An SSE client on its own thread: the parsed messages, as they arrive."""

    def __init__(self, server: Server, since: int | None = 0) -> None:
        self.messages: list[dict[str, str]] = []
        self.conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
        query = "" if since is None else f"?since={since}"
        self.conn.request("GET", f"/api/v1/events{query}")
        self.answer = self.conn.getresponse()
        assert self.answer.status == 200
        assert self.answer.getheader("Content-Type") == "text/event-stream; charset=utf-8"
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        message: dict[str, str] = {}
        try:
            for raw in self.answer:
                line = raw.decode().rstrip("\n")
                if not line:
                    if "data" in message:
                        self.messages.append(message)
                    message = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    message[key] = value
        except (OSError, ValueError):
            return

    def names(self) -> list[str]:
        return [m["event"] for m in list(self.messages)]

    def close(self) -> None:
        self.conn.close()


def test_a_live_run_seen_through_the_api(repo: Path, tmp_path: Path, served: Server) -> None:
    (repo / "docs/gaps.yaml").write_text(TWO)
    gate = tmp_path / "gate"
    client = Client(served)
    before = client.json("/api/v1/state")
    assert before["running"] == []
    assert before["last_seq"] == 0  # no store yet, and the server did not create one
    assert not (repo / ".chump" / "chump.db").exists()
    stream = Events(served)
    run = ChumpProcess(
        repo,
        "dispatch",
        "--no-dry-run",
        "--watch",
        env={"AGENT_MODE": "gate", "AGENT_GATE": str(gate)},
    )
    try:
        seen: list[dict[str, Any]] = []

        def at_the_gate() -> bool:
            seen[:] = [client.json("/api/v1/state")]
            running = seen[0]["running"]
            said = [r["last_activity"] for r in running]
            return len(running) == 2 and all(s.startswith("waiting at the gate") for s in said)

        assert until(at_the_gate), seen
        state = seen[0]
        jsonschema.Draft202012Validator(schema("api-state")).validate(state)
        first = {r["gap_id"]: r for r in state["running"]}
        assert set(first) == {"S-1", "S-2"}
        s1 = first["S-1"]
        assert (s1["backend"], s1["state"], s1["watched"], s1["attempt"]) == (
            "script",
            "running",
            True,
            1,
        )
        assert s1["started_at"] < s1["stalled_at"] < s1["deadline_at"]
        assert first["S-2"]["deadline_at"] - first["S-2"]["started_at"] > (
            s1["deadline_at"] - s1["started_at"]
        )  # effort m has a longer deadline than s
        assert sorted(r["lane"] for r in state["running"]) == [0, 1]
        assert [o["live"] for o in state["orchestrators"]] == [True]
        one = client.json(f"/api/v1/dispatches/{s1['dispatch_id']}")
        assert (one["gap_id"], one["reflection"], one["has_log"]) == ("S-1", None, True)
        log = client.json(f"/api/v1/dispatches/{s1['dispatch_id']}/log?tail=1")
        assert log == {"dispatch_id": s1["dispatch_id"], "lines": ["waiting at the gate for S-1"]}
        nudged = client.json("/api/v1/refresh", 202, "POST")
        assert nudged["nudged"] == [run.proc.pid]
        assert until(lambda: "reloaded" in stream.names())  # the nudge, streamed
        gate.touch()
        assert run.finish(timeout=120) == 0, run.text
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert until(lambda: stream.names().count("outcome") == 2 and "run-finished" in stream.names())
    stream.close()
    names = stream.names()
    assert names[0] == "run-started"
    assert names.count("dispatched") == 2
    ids = [int(m["id"]) for m in stream.messages]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for message in stream.messages:
        assert json.loads(message["data"])["event"] == message["event"]
    after = client.json("/api/v1/state")
    jsonschema.Draft202012Validator(schema("api-state")).validate(after)
    assert after["running"] == []
    assert {r["gap_id"]: r["outcome"] for r in after["recent"]} == {
        "S-1": "shipped",
        "S-2": "shipped",
    }
    assert after["totals"]["by_outcome"] == {"shipped": 2}
    assert after["totals"]["ship_rate"] == 1.0
    bars = after["timeline"]["bars"]  # (started together, in either order)
    assert sorted((b["gap_id"], b["outcome"], b["lane"]) for b in bars) in (
        [("S-1", "shipped", 0), ("S-2", "shipped", 1)],
        [("S-1", "shipped", 1), ("S-2", "shipped", 0)],
    )
    assert [r["arm"] for r in after["routing"]] == ["script"]
    done = client.json(f"/api/v1/dispatches/{s1['dispatch_id']}")
    assert done["state"] == "shipped"
    assert done["reflection"]["outcome"] == "shipped"
    status, headers, body = client.request("GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert 'chump_dispatches_total{outcome="shipped",backend="script"} 2' in text
    assert "chump_agents_running 0" in text
    families = {f.name: f for f in text_string_to_metric_families(text)}  # the format holds
    assert families["chump_dispatches"].type == "counter"
    assert families["chump_agents_running"].type == "gauge"
    assert families["chump_provider_poll_seconds"].type == "histogram"
    assert {f.type for f in families.values()} <= {"counter", "gauge", "histogram"}
    samples = dict(ln.rsplit(" ", 1) for ln in text.splitlines() if not ln.startswith("#"))
    assert int(samples["chump_provider_poll_seconds_count"]) > 0
    assert samples["chump_dispatch_start_seconds_count"] == "2"
    # nothing runs any more: a refresh has nobody to nudge
    assert client.json("/api/v1/refresh", 409, "POST")["status"] == 409
    # a client that comes back resumes after the last event it saw
    again = Events(served, since=None)
    status, _, _ = client.request("GET", "/api/v1/state")
    resumed = Events(served, since=ids[-2])
    assert until(lambda: resumed.names() == ["run-finished"])  # only those after ``since``
    assert again.names() == []
    again.close()
    resumed.close()


def test_bad_requests_get_json_errors(repo: Path, served: Server) -> None:
    client = Client(served)
    for path, status in (
        ("/api/v1/dispatches/7", 404),
        ("/api/v1/dispatches/seven", 400),
        ("/api/v1/dispatches/7/log?tail=0", 400),
        ("/api/v1/dispatches/7/log?tail=x", 400),
        ("/api/v1/events?since=-1", 400),
        ("/api/v1/nothing", 404),
        ("/etc/passwd", 404),
    ):
        error = client.json(path, status)
        assert error["status"] == status
        assert error["error"]
    assert client.json("/api/v1/state", 405, "POST")["error"] == "POST /api/v1/state: use GET"
    assert client.json("/api/v1/refresh", 405)["status"] == 405
    assert client.json("/api/v1/state", 405, "DELETE")["status"] == 405
    rebinding = client.json("/api/v1/state", 403, headers={"Host": "attacker.example:80"})
    assert "not this server" in rebinding["error"]
    cross = client.json("/api/v1/refresh", 403, "POST", headers={"Origin": "http://evil.example"})
    assert cross["error"] == "cross-site requests are refused"
    assert client.json("/api/v1/refresh", 409, "POST")["status"] == 409
    assert not (repo / ".chump").exists()  # the server never writes the store


def test_a_token_is_required_of_every_request(repo: Path) -> None:
    server = serve(_settings(repo), "127.0.0.1", 0, token="s3cret-token")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        anonymous, wrong, right = (
            Client(server),
            Client(server, "nope"),
            Client(server, "s3cret-token"),
        )
        for path in ("/", "/api/v1/state", "/metrics", "/api/v1/events"):
            status, headers, _ = anonymous.request("GET", path)
            assert status == 401
            assert headers["WWW-Authenticate"].startswith("Bearer")
            assert wrong.request("GET", path)[0] == 401
        assert right.json("/api/v1/state")["running"] == []
        assert anonymous.json("/api/v1/state?token=s3cret-token")["running"] == []
    finally:
        server.stop()


def test_serve_needs_a_token_off_loopback(repo: Path) -> None:
    refused = ChumpProcess(repo, "serve", "--host", "0.0.0.0", "--port", "0")
    assert refused.finish() == 2
    assert refused.lines == [
        "chump: error: --host 0.0.0.0 is not loopback: give a --token (or $CHUMP_SERVE_TOKEN) too"
    ]


def test_the_command_prints_its_url_and_stops_on_sigterm(repo: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_chump.cli", "serve", "--port", "0"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("chump: serving http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1].rstrip("/"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/v1/state")
        assert json.loads(conn.getresponse().read())["max_parallel"] == 2
        conn.close()
        taken = ChumpProcess(repo, "serve", "--port", str(port))
        assert taken.finish() == 2
        assert taken.lines == [
            f"chump: error: cannot serve on 127.0.0.1:{port}: Address already in use"
        ]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_hostile_requests_get_json_errors_never_500(repo: Path, served: Server) -> None:
    client = Client(served)
    for path in (
        "/api/v1/dispatches/%C2%B2",
        "/api/v1/dispatches/1/log?tail=%C2%B2",
        "/api/v1/dispatches/1/log?tail=" + "9" * 5000,
        "/api/v1/events?since=%C2%B2",
        "/api/v1/events?since=99999999999999999999999",
    ):
        assert client.json(path, 400)["status"] == 400, path
    status, _, body = client.request(
        "POST", "/api/v1/refresh", headers={"Content-Length": "\u00b2".encode().decode("latin-1")}
    )
    assert status == 413
    assert json.loads(body)["status"] == 413
    for method in ("HEAD", "OPTIONS"):
        status, headers, _ = client.request(method, "/api/v1/state")
        assert status == 405, method
        assert headers["Allow"] == "GET"
    assert client.json("/api/v1/state", headers={"Host": "[::1]:8765"})["running"] == []
    status, headers, body = client.request("GET", "/" + "x" * 70000)  # past the request line limit
    assert status == 414
    assert headers["Content-Type"] == "application/json"


def test_a_store_that_cannot_be_read_is_503(repo: Path, served: Server) -> None:
    (repo / ".chump").mkdir()
    (repo / ".chump" / "chump.db").write_bytes(b"this is not a database at all" * 100)
    client = Client(served)
    for path in ("/api/v1/state", "/api/v1/events", "/metrics", "/api/v1/dispatches/1"):
        error = client.json(path, 503)
        assert "cannot read the state database" in error["error"], path


def test_a_stream_ahead_of_the_store_is_reset(repo: Path, served: Server) -> None:
    with Store.for_repo(repo) as store:
        for n in range(3):
            store.add_event("h:1:1", {"event": "reloaded", "gaps": n})
    stream = Events(served, since=40)  # the client saw more than this store holds: replaced
    assert until(lambda: len(stream.messages) == 4)
    reset, *events = stream.messages
    assert reset["event"] == "reset"
    assert json.loads(reset["data"])["after"] == 0
    assert [json.loads(m["data"])["gaps"] for m in events] == [0, 1, 2]
    stream.close()


def test_refresh_signals_only_orchestrators_that_handle_it(repo: Path, served: Server) -> None:
    me = make_owner()  # this very process: SIGUSR1 would end it
    with Store.for_repo(repo) as store:
        store.register_owner(me)
    client = Client(served)
    assert client.json("/api/v1/refresh", 409, "POST")["status"] == 409  # not nudgeable
    with Store.for_repo(repo) as store:
        store.mark_nudgeable(me)
    previous = signal.signal(signal.SIGUSR1, lambda *_: None)
    try:
        assert client.json("/api/v1/refresh", 202, "POST") == {"nudged": [os.getpid()]}
    finally:
        signal.signal(signal.SIGUSR1, previous)
