"""Lessons: aggregation of ended dispatches, sentences, relevance order, and the prompt builder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pytest_chump.core.model import Gap
from pytest_chump.learn.lessons import Tally, all_lessons, history, lessons_for, open_history
from pytest_chump.state.store import Store

GAP = Gap("INFRA-9", title="t", priority="P1", effort="s")


def ended(
    store: Store,
    gap_id: str,
    backend: str,
    outcome: str,
    cause: str = "",
    effort: str = "s",
    minutes: float = 10,
) -> None:
    dispatch_id = store.add_dispatch(gap_id, "b", "w", backend, "me", effort=effort)
    store.finish_dispatch(dispatch_id, outcome, cause=cause, started_at=0.0, ended_at=minutes * 60)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.for_repo(tmp_path)


def test_history_groups_ended_dispatches_by_domain_effort_backend(store: Store) -> None:
    ended(store, "INFRA-1", "claude", "shipped", minutes=12)
    ended(store, "INFRA-2", "claude", "killed", "timeout", minutes=40)
    ended(store, "INFRA-3", "claude", "race_abandoned")
    ended(store, "DOCS-1", "codex", "stalled", effort="m")
    store.add_dispatch("INFRA-4", "b", "w", "claude", "me", effort="s")  # still running
    tallies = history(store)
    assert set(tallies) == {("infra", "s", "claude"), ("docs", "m", "codex")}
    infra = tallies[("infra", "s", "claude")]
    assert (infra.dispatches, infra.shipped) == (3, 1)
    assert infra.minutes == [12, 40, 10]
    assert dict(infra.causes) == {"timeout": 1}
    assert dict(tallies[("docs", "m", "codex")].causes) == {"unknown": 1}


def test_sentence_counts_rate_median_and_two_top_causes() -> None:
    tally = Tally()
    for _ in range(7):
        tally.add("shipped", "", 14 * 60)
    tally.add("killed", "timeout", 60 * 60)
    tally.add("ci_failed", "tests-failed", 5 * 60)
    assert tally.sentence("infra/s with claude") == (
        "infra/s with claude: 7 of 9 shipped (78%), median 14 min; "
        "failures: tests-failed x1, timeout x1"
    )
    tally.add("killed", "timeout", None)
    tally.add("stalled", "merge-conflict", None)
    assert tally.sentence("x").endswith("; failures: timeout x2, merge-conflict x1")
    quick = Tally()
    quick.add("shipped", "", 20)
    assert quick.sentence("x") == "x: 1 of 1 shipped (100%), median <1 min"


def test_lessons_most_relevant_first_without_repeats(store: Store) -> None:
    assert lessons_for(store, GAP, "claude") == []
    ended(store, "INFRA-1", "claude", "shipped")
    ended(store, "INFRA-2", "claude", "shipped")
    assert lessons_for(store, GAP, "claude") == [
        "infra/s with claude: 2 of 2 shipped (100%), median 10 min"
    ]
    ended(store, "INFRA-3", "claude", "killed", "timeout", effort="m")
    ended(store, "DOCS-1", "claude", "killed", "agent-error")
    ended(store, "INFRA-5", "codex", "shipped")
    lessons = lessons_for(store, GAP, "claude")
    assert [line.split(":")[0] for line in lessons] == [
        "infra/s with claude",
        "infra/* with claude",
        "*/s with claude",
    ]
    assert lessons[1].startswith("infra/* with claude: 2 of 3 shipped (67%)")
    assert len(lessons_for(store, GAP, "claude", limit=2)) == 2
    assert lessons_for(store, GAP, "aider") == []


def test_all_lessons_lists_every_group_biggest_first(store: Store) -> None:
    ended(store, "DOCS-1", "codex", "shipped")
    ended(store, "INFRA-1", "claude", "shipped")
    ended(store, "INFRA-2", "claude", "stalled", "timeout")
    assert all_lessons(store.conn) == [
        "infra/s with claude: 1 of 2 shipped (50%), median 10 min; failures: timeout x1",
        "docs/s with codex: 1 of 1 shipped (100%), median 10 min",
    ]


def test_open_history_is_read_only_and_never_creates(tmp_path: Path) -> None:
    assert open_history(tmp_path / ".chump") is None
    assert not (tmp_path / ".chump").exists()
    Store.for_repo(tmp_path).close()
    conn = open_history(tmp_path / ".chump")
    assert conn is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM dispatches")
    conn.close()


# --- the built-in prompt builder ------------------------------------------------------
