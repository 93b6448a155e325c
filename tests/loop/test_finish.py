"""Finishing a dispatch: a failing sink is isolated, warned about and redelivered later."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from pytest_chump.core.protocols import Register
from pytest_chump.core.records import Reflection
from pytest_chump.loop.app import App
from pytest_chump.loop.finish import Finisher
from pytest_chump.loop.progress import Progress
from pytest_chump.reflect.memory_sink import MemorySink
from pytest_chump.state.store import Store
from tests.reflect.test_sinks import lines, make


class FlakySink:
    name = "flaky"

    def __init__(self) -> None:
        self.failing = True
        self.received: list[Reflection] = []

    def write(self, r: Reflection) -> None:
        if self.failing:
            raise OSError("disk full")
        self.received.append(r)


class FlakyPlugin:
    def __init__(self, sink: FlakySink) -> None:
        self.sink = sink

    def chump_register_sinks(self, register: Register) -> None:
        register("flaky", lambda settings: self.sink)


def test_failing_sink_is_isolated_and_redelivered_later(tmp_path: Path) -> None:
    flaky = FlakySink()
    app = App.create(
        {"repo_root": str(tmp_path), "sinks": "flaky,memory,jsonl"}, plugins=[FlakyPlugin(flaky)]
    )
    err = io.StringIO()
    with Store.for_repo(tmp_path) as store:
        progress = Progress(io.StringIO(), err)
        finisher = Finisher(
            app=app,
            store=store,
            progress=progress,
            owner="me",
            now=time.time,
            remove_workspace=lambda flight: "",
        )
        dispatch_id = store.add_dispatch("SNK-1", "chump/snk-1", str(tmp_path / "wt"), "x", "me")
        record = make(dispatch_id)
        assert store.finish_with_reflection(dispatch_id, record)
        finisher.deliver(record, app.settings.sinks)  # must not raise
        memory = app.sinks()["memory"]
        assert isinstance(memory, MemorySink)
        assert memory.reflections == [record]
        assert len(lines(tmp_path / ".chump" / "reflections.jsonl")) == 1
        assert "sink 'flaky' failed: OSError: disk full" in err.getvalue()
        assert [(r.dispatch_id, missing) for r, missing in store.undelivered(["flaky"])] == [
            (dispatch_id, ["flaky"])
        ]
        finisher.redeliver()  # still failing: warned again, nothing raised
        flaky.failing = False
        finisher.redeliver()
        assert flaky.received == [record]
        assert memory.reflections == [record]  # delivered sinks are not written again
        assert store.undelivered(app.settings.sinks) == []


def test_summary_rows_come_in_dispatch_order_not_finish_order(tmp_path: Path) -> None:
    from pytest_chump.core.records import Outcome

    app = App.create({"repo_root": str(tmp_path), "sinks": "memory"})
    with Store.for_repo(tmp_path) as store:
        finisher = Finisher(app, store, Progress(io.StringIO()), "me", time.time, lambda f: "")
        for gap_id, dispatch_id in (("LATE", 9), ("EARLY", 2), ("MIDDLE", 5)):
            finisher._count(gap_id, f"chump/{gap_id.lower()}", Outcome("shipped"), dispatch_id)
        assert [gap for gap, _, _ in finisher.rows] == ["LATE", "EARLY", "MIDDLE"]
        assert [gap for gap, _, _ in finisher.in_dispatch_order()] == ["EARLY", "MIDDLE", "LATE"]


def test_one_cause_per_dispatch_in_the_row_and_the_reflection(tmp_path: Path) -> None:
    from pytest_chump.agents.fake import FakeHandle
    from pytest_chump.core.model import Gap
    from pytest_chump.core.protocols import Dispatch
    from pytest_chump.core.records import Outcome
    from pytest_chump.dispatch.dispatcher import Flight

    class Rejected(FakeHandle):
        def stderr_tail(self) -> list[str]:
            return ["ERROR: invalid x-api-key"]

    app = App.create({"repo_root": str(tmp_path), "sinks": "memory"})
    with Store.for_repo(tmp_path) as store:
        finisher = Finisher(app, store, Progress(io.StringIO()), "me", time.time, lambda f: "")
        row = store.add_dispatch("C-1", "chump/c-1", str(tmp_path), "claude", "me")
        dispatch = Dispatch(Gap("C-1"), "chump/c-1", tmp_path, "claude", time.time())
        dispatch.handle, dispatch.dispatch_id = Rejected(1), row
        outcome = Outcome("killed", reason="exit code 1", cause="agent-error")
        finisher.finish(Flight(dispatch, ""), outcome, 1, 0)
        (stored,) = store.dispatches()
    reflection = json.loads(stored.reflection or "{}")  # the outbox copy the sinks get
    assert stored.cause == reflection["cause"] == "auth"


def test_a_secret_from_a_spawner_env_table_never_reaches_a_record(tmp_path: Path) -> None:
    import subprocess
    import sys

    from pytest_chump.cli import main
    from tests.gitrepos import make_origin

    _, repo = make_origin(tmp_path)
    secret = "vendor-secret-0123456789"
    agent = (
        "import os, sys; "
        "print('ERROR key rejected: ' + os.environ['VENDOR_API_KEY'], file=sys.stderr); "
        "sys.exit(1)"
    )
    (repo / "pyproject.toml").write_text(
        f"""[tool.chump]
spawner = "vendor"
pr_provider = "git"
sinks = "sqlite,jsonl"
poll_interval = "50ms"

[tool.chump.spawners.vendor]
command = {json.dumps([sys.executable, "-c", agent])}
env = {{ VENDOR_API_KEY = "{secret}" }}
"""
    )
    (repo / "docs/gaps.yaml").write_text("gaps:\n  - {id: SEC-1, priority: P1, effort: s}\n")
    assert main(["dispatch", "--repo-root", str(repo), "--no-dry-run", "--watch"]) == 0
    with Store.for_repo(repo) as store:
        (row,) = store.dispatches()
        (stored,) = store.reflections()
    assert row.outcome == "killed"
    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_chump.cli",
            "reflections",
            "--json",
            "--repo-root",
            str(repo),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jsonl = (repo / ".chump/reflections.jsonl").read_text()
    for text in (json.dumps(stored), row.reflection or "", row.reason, exported, jsonl):
        assert secret not in text
    assert "key rejected: [REDACTED]" in stored["notes"]
