"""Reflection sinks: the jsonl file (format, append, fsync, dedupe, two writer processes), the
memory and sqlite sinks, and delivery that survives a failing sink and retries it later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_chump.core import config, config_sources
from pytest_chump.core.records import Outcome, Reflection, reflection_from_dict
from pytest_chump.reflect import record as reflection
from pytest_chump.reflect.jsonl_sink import JsonlSink, jsonl_path
from pytest_chump.reflect.memory_sink import MemorySink
from pytest_chump.reflect.sqlite_sink import SqliteSink
from pytest_chump.state.store import Store

EPOCH_2024 = 1_704_067_200.0  # 2024-01-01T00:00:00Z


def make(dispatch_id: int | None = 1, outcome: str = "killed") -> Reflection:
    cause = "timeout" if outcome == "killed" else ""
    return reflection.build(
        gap_id="SNK-1",
        effort="s",
        backend="claude",
        outcome=Outcome(outcome, reason="soft-deadline exceeded", cause=cause),
        duration_s=75.0,
        parallel_siblings=1,
        dispatch_id=dispatch_id,
    )


@pytest.fixture
def settings(tmp_path: Path) -> config.Settings:
    return config_sources.resolve(tmp_path, {}, {})


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- jsonl -----------------------------------------------------------------------------


def test_jsonl_line_has_the_reflection_and_export_fields(settings: config.Settings) -> None:
    sink = JsonlSink(settings, now=lambda: EPOCH_2024)
    r = make(7)
    sink.write(r)
    (line,) = lines(settings.repo_root / ".chump" / "reflections.jsonl")
    assert line["directive"] == reflection.directive(r)
    assert line["outcome_class"] == "failure"
    assert line["error_pattern"] == "orchestrator_dispatch"
    assert line["created_at"] == "2024-01-01T00:00:00+00:00"
    assert (line["dispatch_id"], line["cause"], line["duration_s"]) == (7, "timeout", 75)
    assert reflection_from_dict(line) == r


def test_jsonl_path_from_env(settings: config.Settings, tmp_path: Path) -> None:
    assert jsonl_path(settings, {}) == tmp_path / ".chump" / "reflections.jsonl"
    assert jsonl_path(settings, {"CHUMP_JSONL_PATH": "out/r.jsonl"}) == tmp_path / "out/r.jsonl"
    elsewhere = tmp_path / "elsewhere.jsonl"
    assert jsonl_path(settings, {"CHUMP_JSONL_PATH": str(elsewhere)}) == elsewhere


def test_jsonl_sink_reads_env_path(
    settings: config.Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHUMP_JSONL_PATH", str(tmp_path / "feed" / "all.jsonl"))
    JsonlSink(settings).write(make(1))
    assert len(lines(tmp_path / "feed" / "all.jsonl")) == 1
    assert not (tmp_path / ".chump").exists()


def test_jsonl_appends_and_keeps_existing_lines(tmp_path: Path, settings: config.Settings) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"dispatch_id": 100, "note": "written by an older run"}\n')
    sink = JsonlSink(settings, path=path)
    for dispatch_id in (1, 2, None, None):
        sink.write(make(dispatch_id))
    assert [line["dispatch_id"] for line in lines(path)] == [100, 1, 2, None, None]


def test_jsonl_skips_a_dispatch_already_written(tmp_path: Path, settings: config.Settings) -> None:
    path = tmp_path / "r.jsonl"
    sink = JsonlSink(settings, path=path)
    sink.write(make(12))
    sink.write(make(1))
    sink.write(make(12))  # redelivered after a crash
    assert [line["dispatch_id"] for line in lines(path)] == [12, 1]
    assert sink.has(12)
    assert not sink.has(2)


def test_jsonl_starts_a_new_line_after_a_torn_one(
    tmp_path: Path, settings: config.Settings
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"dispatch_id": 5, "gap_id": "SNK-1", "notes": "cut sho')
    sink = JsonlSink(settings, path=path)
    sink.write(make(5))  # the torn line does not count as written
    text = path.read_text().splitlines()
    assert len(text) == 2
    assert json.loads(text[1])["dispatch_id"] == 5


def test_jsonl_fsyncs_every_write(
    tmp_path: Path, settings: config.Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    sink = JsonlSink(settings, path=tmp_path / "new" / "r.jsonl")
    sink.write(make(1))
    assert len(synced) == 2  # the line, then the directory that got a new file
    sink.write(make(2))
    sink.write(make(2))  # a duplicate writes nothing
    assert len(synced) == 3


WRITER = """\
import sys
from pathlib import Path
from pytest_chump.core import config
from pytest_chump.core import config_sources
from pytest_chump.core.records import Outcome
from pytest_chump.reflect import record as reflection
from pytest_chump.reflect.jsonl_sink import JsonlSink

path, first, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sink = JsonlSink(config_sources.resolve(path.parent, {}, {}), path=path)
for i in range(first, first + count):
    sink.write(reflection.build(gap_id=f"P-{i}", effort="s", backend="x",
               outcome=Outcome("stalled", reason="x" * 2000), duration_s=1,
               parallel_siblings=0, dispatch_id=i))
"""


def test_jsonl_two_writer_processes(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "r.jsonl"
    # the id ranges overlap: both processes deliver 20..39, as two crashed runs could
    procs = [
        subprocess.Popen([sys.executable, str(script), str(path), str(first), "40"])
        for first in (0, 20)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    ids = [line["dispatch_id"] for line in lines(path)]
    assert sorted(ids) == list(range(60))
    assert all(len(str(line["notes"])) > 2000 for line in lines(path))


# --- memory and sqlite -------------------------------------------------------------------


def test_memory_sink_keeps_records_in_order() -> None:
    sink = MemorySink()
    sink.write(make(1))
    sink.write(make(2))
    assert [r.dispatch_id for r in sink.reflections] == [1, 2]


def test_sqlite_sink_is_idempotent_per_dispatch(settings: config.Settings) -> None:
    sink = SqliteSink(settings)
    sink.write(make(3))
    sink.write(make(3))
    sink.write(make(4, outcome="shipped"))
    with Store.for_repo(settings.repo_root) as store:
        stored = store.reflections()
    assert [r["dispatch_id"] for r in stored] == [4, 3]


# --- delivery: one failing sink never stops the others -------------------------------------
