"""``chump status --json`` is what its shipped JSON Schema says, in every state the store can
be in: no store yet, agents in flight, outcomes, gaps needing a human, retries, circuits."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import jsonschema

from pytest_chump.core.schemas import schema
from pytest_chump.state.rows import HoldRow, RetryRow
from pytest_chump.state.store import Store
from tests.chumpproc import ChumpProcess
from tests.gitrepos import repo  # noqa: F401  (fixture)


def status(repo: Path) -> dict[str, Any]:
    shown = ChumpProcess(repo, "status", "--json")
    assert shown.finish() == 0, shown.text
    (line,) = shown.lines
    data: dict[str, Any] = json.loads(line)
    jsonschema.Draft202012Validator(schema("status")).validate(data)
    return data


def test_the_schema_is_itself_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(schema("status"))


def test_no_store_yet(repo: Path) -> None:
    assert status(repo) == {
        "in_flight": [],
        "leases": {},
        "needs_human": [],
        "retries": [],
        "circuits": [],
        "last_outcomes": [],
    }


def test_every_part_filled(repo: Path) -> None:
    (repo / "docs/gaps.yaml").write_text("gaps:\n  - {id: J-1, priority: P1, effort: s}\n")
    assert ChumpProcess(repo, "dispatch", "--no-dry-run", "--watch").finish() == 0
    now = time.time()
    with Store.for_repo(repo) as store:
        gone = f"{socket.gethostname()}:999999:1"  # a local process that is not running
        store.add_dispatch("J-2", "chump/j-2", str(repo), "script", gone)
        store.hold(HoldRow("J-3", "tests-failed after 3 attempt(s)", None, now, "tests-failed"))
        store.schedule_retry(
            RetryRow("J-4", "transient", "network", now + 60, None, 2, 0, 1, "", now)
        )
        store.open_circuit("claude", gone, "Not logged in · Please run /login")
    data: dict[str, Any] = status(repo)
    (shipped,) = data["last_outcomes"]
    assert (shipped["gap_id"], shipped["outcome"], shipped["attempt"]) == ("J-1", "shipped", 1)
    (flying,) = data["in_flight"]
    assert (flying["gap_id"], flying["state"], flying["watched"]) == ("J-2", "starting", False)
    assert [h["gap_id"] for h in data["needs_human"]] == ["J-3"]
    assert [r["kind"] for r in data["retries"]] == ["transient"]
    assert [(c["arm"], c["message"]) for c in data["circuits"]] == [
        ("claude", "Not logged in · Please run /login")
    ]
