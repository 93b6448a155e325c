"""The event stream: ``chump dispatch --events PATH|-`` writes one JSON line per event, each
valid against the shipped schema (``core/schemas/event.schema.json``), numbered as the store
keeps them; a destination that fails never stops the run."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_chump.core.errors import ChumpError
from pytest_chump.core.schemas import schema
from pytest_chump.loop.events import EVENT_NAMES, Events
from pytest_chump.state.database import DB_NAME, read_only
from pytest_chump.state.telemetry import events_after
from tests.gitrepos import repo  # noqa: F401  (fixture)

THREE = """\
gaps:
  - {id: EV-1, priority: P1, effort: s}
  - {id: EV-2, priority: P1, effort: s, depends_on: [EV-1]}
  - {id: EV-3, priority: P2, effort: s}
"""
VALIDATOR = jsonschema.Draft202012Validator(schema("event"))


def test_the_schema_is_valid_and_names_every_event() -> None:
    jsonschema.Draft202012Validator.check_schema(schema("event"))
    assert schema("event")["properties"]["event"]["enum"] == list(EVENT_NAMES)


def _dispatch(repo: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    (repo / "docs/gaps.yaml").write_text(THREE)
    return subprocess.run(
        [sys.executable, "-m", "pytest_chump.cli", "dispatch", "--no-dry-run", "--watch", *extra],
        cwd=repo,
        env={**os.environ, "AGENT_MODE_EV_3": "fail"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_events_on_stdout_alone_and_as_stored(repo: Path) -> None:
    done = _dispatch(repo, "--events", "-", "--retries", "0")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]  # nothing else there
    assert "OUTCOME: EV-1 shipped" in done.stderr  # the progress lines moved to stderr
    for event in events:
        VALIDATOR.validate(event)
    names = [e["event"] for e in events]
    assert names[0] == "run-started"
    assert names[-1] == "run-finished"
    assert events[0]["picks"] == ["EV-1", "EV-3"]
    by_gap = {
        gap: [e["event"] for e in events if e.get("gap_id") == gap and e["event"] != "state"]
        for gap in ("EV-1", "EV-2", "EV-3")
    }
    assert by_gap["EV-1"][:3] == ["dispatched", "outcome", "reflection"]
    assert by_gap["EV-2"][:3] == ["dispatched", "outcome", "reflection"]  # after EV-1 landed
    assert by_gap["EV-3"] == ["dispatched", "outcome", "reflection"]
    outcomes = {e["gap_id"]: e for e in events if e["event"] == "outcome"}
    assert outcomes["EV-1"]["outcome"] == outcomes["EV-2"]["outcome"] == "shipped"
    assert outcomes["EV-3"]["outcome"] == "killed"
    dispatched = {e["gap_id"]: e["dispatch_id"] for e in events if e["event"] == "dispatched"}
    assert {g: e["dispatch_id"] for g, e in outcomes.items()} == dispatched
    shipped = [e for e in events if e.get("notification") == "gap-shipped"]
    assert sorted(e["gap_id"] for e in shipped) == ["EV-1", "EV-2"]
    assert events[-1]["counts"]["shipped"] == 2
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    with read_only(repo / ".chump" / DB_NAME) as conn:
        stored = events_after(conn, 0)
    assert [(s.seq, s.body["event"]) for s in stored] == [(e["seq"], e["event"]) for e in events]


def test_events_appended_to_a_file(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"kept": true}\n')
    done = _dispatch(repo, "--events", str(path), "--retries", "0")
    assert done.returncode == 0, done.stderr
    assert "OUTCOME: EV-1 shipped" in done.stdout
    first, *lines = path.read_text().splitlines()
    assert first == '{"kept": true}'  # appended, never truncated
    assert [json.loads(line)["event"] for line in lines][-1] == "run-finished"


def test_bad_events_destination_is_one_line_before_anything_starts(
    repo: Path, tmp_path: Path
) -> None:
    done = _dispatch(repo, "--events", str(tmp_path / "missing" / "events.jsonl"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"chump: error: --events {tmp_path / 'missing' / 'events.jsonl'}: No such file or directory"
    ]
    assert not (repo / ".chump" / DB_NAME).exists()
    dry = _dispatch(repo, "--events", "-")
    assert dry.returncode == 0  # (--no-dry-run is given by _dispatch)
    plain = subprocess.run(
        [sys.executable, "-m", "pytest_chump.cli", "dispatch", "--events", "-"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.returncode == 2
    assert "--events needs --no-dry-run" in plain.stderr
    both = _dispatch(repo, "--events", "-", "--json")
    assert both.returncode == 2
    assert "--events - and --json both want stdout" in both.stderr


class _Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


class _FullStore:
    calls = 0

    def add_event(self, owner: str, event: object) -> int:
        self.calls += 1
        raise ChumpError("chump.db: cannot write the state database: disk is full")


def test_a_failing_destination_is_dropped_and_said_once() -> None:
    warned: list[str] = []
    kept = io.StringIO()
    store = _FullStore()
    events = Events([_Broken(), kept], warn=warned.append)
    events.attach(store, "host:1:2", "/repo")  # type: ignore[arg-type]
    events.emit("reloaded", gaps=3)
    events.emit("reloaded", gaps=4)
    assert [json.loads(line)["gaps"] for line in kept.getvalue().splitlines()] == [3, 4]
    assert store.calls == 1
    assert len(warned) == 2
    assert "no longer stored" in warned[0]
    assert "Broken pipe" in warned[1]
    with pytest.raises(AssertionError):
        events.emit("no-such-event")


def test_events_leave_out_none_and_carry_the_common_fields() -> None:
    kept = io.StringIO()
    events = Events([kept])
    event: dict[str, Any] = events.emit("lost", gap_id="G-1", dispatch_id=None)
    assert json.loads(kept.getvalue()) == event
    assert "dispatch_id" not in event
    assert "seq" not in event
    assert {"v", "event", "time", "ts", "repo", "owner", "gap_id"} == set(event)
    VALIDATOR.validate(event)
