"""``chump reflections``: filters, ``--since`` forms, JSON lines, limit, ordering, empty and
missing databases, and one-line errors for bad flags (exit 2)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from pytest_chump import cli
from pytest_chump.cli.reflections import HEADER, duration, parse_since, table
from pytest_chump.core.records import Outcome, reflection_from_dict
from pytest_chump.reflect import record as reflection
from pytest_chump.state.queries import StoredReflection
from pytest_chump.state.store import Store

HOUR = 3600.0
NOW = time.time()

# (dispatch id, gap, outcome, backend, cause, hours ago)
ROWS = [
    (1, "API-1", "shipped", "claude", "", 50.0),
    (2, "API-2", "killed", "codex", "timeout", 30.0),
    (3, "API-1", "ci_failed", "claude:opus", "tests-failed", 5.0),
    (4, "WEB-1", "stalled", "aider", "", 1.6),
    (5, "API-2", "killed", "claude-next", "agent-error", 0.5),
]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    with Store.for_repo(tmp_path) as store:
        for dispatch_id, gap, outcome, backend, cause, ago in ROWS:
            r = reflection.build(
                gap_id=gap,
                effort="s",
                backend=backend,
                outcome=Outcome(outcome, 40 + dispatch_id, cause=cause),
                duration_s=65 * dispatch_id,
                parallel_siblings=0,
                dispatch_id=dispatch_id,
            )
            store.insert_reflection(r, reflection.directive(r))
            store.conn.execute(
                "UPDATE reflections SET created_at=? WHERE dispatch_id=?",
                (NOW - ago * HOUR, dispatch_id),
            )
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    status = cli.main(["reflections", *argv])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.splitlines()


def ids(capsys: pytest.CaptureFixture[str], repo: Path, *argv: str) -> list[int]:
    status, out, err = run(capsys, "--repo-root", str(repo), "--json", *argv)
    assert status == 0, err
    return [int(json.loads(line)["dispatch_id"]) for line in out]


def test_newest_first_table(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    status, out, err = run(capsys, "--repo-root", str(repo))
    assert (status, err) == (0, [])
    assert tuple(out[0].split()) == HEADER
    assert [line.split()[2] for line in out[1:]] == ["API-2", "WEB-1", "API-1", "API-2", "API-1"]
    newest = out[1].split()
    assert newest[3:9] == ["1", "killed", "claude-next", "5m25s", "#45", "agent-error"]
    assert " ".join(newest[9:]).startswith("dispatched gap=API-2 effort=s domain=api")
    assert out[5].split()[8] == "-"  # a success has no cause


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ((), [5, 4, 3, 2, 1]),
        (("--gap", "API-1"), [1, 3]),  # one gap: its attempts in the order they were made
        (("--outcome", "killed"), [5, 2]),
        (("--backend", "claude"), [3, 1]),  # claude:opus yes, claude-next no
        (("--backend", "claude:opus"), [3]),
        (("--since", "2h"), [5, 4]),
        (("--since", "90m"), [5]),
        (("--since", "1d"), [5, 4, 3]),
        (("--since", "2d"), [5, 4, 3, 2]),
        (("--limit", "2"), [5, 4]),
        (("--gap", "API-2", "--outcome", "killed", "--limit", "1"), [5]),
    ],
)
def test_filters(
    capsys: pytest.CaptureFixture[str], repo: Path, argv: tuple[str, ...], expected: list[int]
) -> None:
    assert ids(capsys, repo, *argv) == expected


def test_since_iso_forms(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    cutoff = datetime.fromtimestamp(NOW - 10 * HOUR)
    assert ids(capsys, repo, "--since", cutoff.isoformat(timespec="seconds")) == [5, 4, 3]
    with_offset = datetime.fromtimestamp(NOW - 10 * HOUR).astimezone().isoformat()
    assert ids(capsys, repo, "--since", with_offset) == [5, 4, 3]
    assert ids(capsys, repo, "--since", "2000-01-01") == [5, 4, 3, 2, 1]
    assert ids(capsys, repo, "--since", "2999-01-01") == []


def test_parse_since() -> None:
    assert parse_since("2h", 10_000.0) == 10_000.0 - 7200
    assert parse_since(" 1.5D ", 200_000.0) == 200_000.0 - 129_600
    assert parse_since("1w", 1e6) == 1e6 - 604_800
    assert parse_since("2024-01-01T00:00:00+00:00", 0) == 1_704_067_200.0
    with pytest.raises(ValueError, match="'soon': expected an ISO date"):
        parse_since("soon", 0)


def test_json_lines_match_the_jsonl_sink_shape(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    status, out, _ = run(capsys, "--repo-root", str(repo), "--json", "--limit", "1")
    assert status == 0
    (line,) = out
    record = json.loads(line)
    assert record["gap_id"] == "API-2"
    assert record["outcome_class"] == "failure"
    assert record["error_pattern"] == "orchestrator_dispatch"
    assert record["directive"].startswith("dispatched gap=API-2 ")
    assert datetime.fromisoformat(record["created_at"]).timestamp() == pytest.approx(NOW, abs=3600)
    assert reflection_from_dict(record).cause == "agent-error"


def test_empty_result_is_a_note(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    status, out, err = run(capsys, "--repo-root", str(repo), "--gap", "NOPE-1")
    assert (status, out) == (0, [])
    assert err == ["note: no reflections match"]


def test_no_database_is_a_note_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, err = run(capsys, "--repo-root", str(tmp_path))
    assert (status, out) == (0, [])
    assert len(err) == 1
    assert err[0].startswith("note: no reflections yet")
    assert not (tmp_path / ".chump").exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("--outcome", "exploded"), "argument --outcome: invalid choice: 'exploded'"),
        (("--since", "last tuesday"), "argument --since: 'last tuesday': expected an ISO"),
        (("--since", "2h30"), "argument --since: '2h30'"),
        (("--limit", "0"), "argument --limit: '0': expected a positive whole number"),
        (("--limit", "ten"), "argument --limit: 'ten'"),
        (("--frobnicate",), "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_flags_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], repo: Path, argv: tuple[str, ...], fragment: str
) -> None:
    status, out, err = run(capsys, "--repo-root", str(repo), *argv)
    assert (status, out) == (2, [])
    assert len(err) == 1
    assert err[0].startswith("chump: error: ")
    assert fragment in err[0]


def test_table_is_cut_to_the_terminal_width() -> None:
    r = reflection.build(
        gap_id="LONG-1",
        effort="m",
        backend="claude",
        outcome=Outcome("killed", cause="timeout"),
        duration_s=7300,
        parallel_siblings=2,
        tail=["x" * 300],
    )
    rows = [StoredReflection(1, NOW, reflection.directive(r), r)]
    wide = table(rows)
    assert max(len(line) for line in wide) > 100
    cut = table(rows, width=80)
    assert all(len(line) <= 80 for line in cut)
    assert cut[1].endswith("...")
    assert "2h01m" in cut[1]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59, "59s"), (60, "1m00s"), (605, "10m05s"), (3600, "1h00m")]
)
def test_duration(seconds: int, text: str) -> None:
    assert duration(seconds) == text


def test_reads_while_an_orchestrator_holds_the_database(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    with Store.for_repo(repo) as store:
        store.conn.execute("BEGIN IMMEDIATE")  # a writer mid-transaction
        assert ids(capsys, repo, "--limit", "1") == [5]
        store.conn.execute("ROLLBACK")
