"""``chump report --html``: a self-contained page holding the history, safe from its data."""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytest_chump.cli import main
from pytest_chump.cli.report import parse_when
from pytest_chump.state.store import Store

HOSTILE = "</script><script>alert(1)</script>"
DATA = re.compile(r'<script id="chump-data" type="application/json">(.*?)</script>', re.S)


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def ended(
    store: Store, gap: str, outcome: str, start: float, minutes: float = 10, **fields: object
) -> int:
    """A dispatch that ran from ``start`` for ``minutes`` and ended with ``outcome``."""
    dispatch_id = store.add_dispatch(gap, f"chump/{gap}", f"/wt/{gap}", "claude", "o:1:1")
    store.update_dispatch(dispatch_id, started_at=start)
    store.finish_dispatch(dispatch_id, outcome, ended_at=start + minutes * 60, **fields)
    return dispatch_id


def embedded(html: str) -> dict[str, object]:
    (text,) = DATA.findall(html)
    data: dict[str, object] = json.loads(text)
    return data


def bars(data: dict[str, object]) -> list[dict[str, object]]:
    timeline = data["timeline"]
    assert isinstance(timeline, dict)
    found: list[dict[str, object]] = timeline["bars"]
    return found


def report(repo: Path, *args: str) -> str:
    out = repo / "report.html"
    assert main(["report", "--html", str(out), "--repo-root", str(repo), *args]) == 0
    return out.read_text(encoding="utf-8")


def test_a_repository_that_never_dispatched_gets_an_empty_self_contained_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = git_repo(tmp_path / "repo")
    html = report(repo)
    assert "report of 0 dispatches written to" in capsys.readouterr().out
    assert not (repo / ".chump").exists()  # reading never creates the store
    data = embedded(html)
    assert (bars(data), data["days"], data["recent"]) == ([], [], [])
    assert data["repo"] == str(repo)
    assert "<link" not in html.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "/*CHUMP_" not in html  # every marker was filled


def test_the_report_holds_the_history_and_its_text_cannot_end_the_script(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo")
    noon = datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()
    with Store.for_repo(repo) as store:
        shipped = ended(store, "R-1", "shipped", noon, cost_usd=1.25)
        failed = ended(store, "R-2", "ci_failed", noon + 1800, reason=HOSTILE, cause=HOSTILE)
    html = report(repo)
    assert HOSTILE not in html
    assert "alert(1)" in html  # it is there, as data
    assert html.lower().count("<script") == 2  # the data block and the bundle, nothing more
    assert html.lower().count("</script>") == 2
    data = embedded(html)
    assert [(b["dispatch_id"], b["outcome"]) for b in bars(data)] == [
        (shipped, "shipped"),
        (failed, "ci_failed"),
    ]
    recent = data["recent"]
    assert isinstance(recent, list)
    assert [r["reason"] for r in recent] == [HOSTILE, ""]
    assert data["days"] == [
        {"day": "2024-05-01", "backend": "claude", "ended": 2, "shipped": 1, "cost_usd": 1.25}
    ]


def test_since_keeps_the_dispatches_started_since_then(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo")
    now = time.time()
    with Store.for_repo(repo) as store:
        ended(store, "OLD-1", "shipped", now - 10 * 86400)
        ended(store, "NEW-1", "killed", now - 3600)
    assert [b["gap_id"] for b in bars(embedded(report(repo)))] == ["OLD-1", "NEW-1"]
    recent = embedded(report(repo, "--since", "7d"))
    assert [b["gap_id"] for b in bars(recent)] == ["NEW-1"]
    assert recent["totals"] == {
        "dispatches": 1,
        "ended": 1,
        "by_outcome": {"killed": 1},
        "ship_rate": 0.0,
        "cost_usd": 0.0,
        "tokens_in": 0,
        "tokens_out": 0,
    }
    assert recent["since"] == pytest.approx(now - 7 * 86400, abs=60)
    since = datetime.fromtimestamp(now - 5 * 86400, UTC).strftime("%Y-%m-%dT%H:%M")
    assert [b["gap_id"] for b in bars(embedded(report(repo, "--since", since)))] == ["NEW-1"]


def test_when_is_a_duration_or_an_iso_moment_in_utc_unless_zoned() -> None:
    now = 1_700_000_000.0
    assert parse_when("30m", now) == now - 1800
    assert parse_when("12h", now) == now - 12 * 3600
    assert parse_when("7d", now) == now - 7 * 86400
    assert parse_when("2024-05-01", now) == datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    at = datetime(2024, 5, 1, 9, 30, tzinfo=UTC).timestamp()
    assert parse_when("2024-05-01T09:30", now) == at
    assert parse_when("2024-05-01T11:30+02:00", now) == at
    with pytest.raises(ValueError, match="expected a duration"):
        parse_when("last tuesday", now)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--since", "yesterday"], "argument --since: 'yesterday': expected a duration"),
        (["--html", "{tmp}/missing/report.html"], "cannot write the report to"),
        (["--html", "{tmp}"], "cannot write the report to"),
    ],
)
def test_a_bad_when_or_an_unwritable_path_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    repo = git_repo(tmp_path / "repo")
    given = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--html" not in given:
        given += ["--html", str(tmp_path / "r.html")]
    assert main(["report", "--repo-root", str(repo), *given]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("chump: error: ")
    assert said in err[0]
    assert not list(tmp_path.glob("**/*.html"))
