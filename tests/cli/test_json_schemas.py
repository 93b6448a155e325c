"""Every ``--json`` output has a JSON Schema shipped in the package, and what each command
really prints is what its schema says: with no store (or an empty backlog) and a filled one.

``chump status`` has its own module (tests/cli/test_status_json.py), ``chump dispatch`` too
(tests/cli/test_dispatch_json.py); this one holds the checks every schema must pass.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_chump import cli
from pytest_chump.core.records import Outcome, Reflection
from pytest_chump.core.schemas import HERE, LINES, OTHERS, names, schema
from pytest_chump.reflect import record as reflection
from pytest_chump.state.store import Store
from tests.gitrepos import git

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
BASE = "https://pytest-chump/schemas/"
BACKLOG = """\
gaps:
  - {id: INFRA-1, title: wire the thing, priority: P1, effort: s}
  - {id: INFRA-2, title: then more, priority: P1, effort: s, depends_on: [INFRA-1]}
  - {id: DOCS-1, title: write the thing, priority: P2, effort: m}
  - {id: DOCS-2, title: bad, priority: P9}
  - {id: DOCS-3, title: done, status: done}
"""
ROUTING = """\
[tool.chump.routing]
rules = [
  { match = { prefix = ["INFRA-"], effort = ["s", "m"] }, arms = [
      { spawner = "codex" }, { spawner = "claude", model = "opus" } ] },
]
default = [{ spawner = "claude" }]
"""
ARMS = [("codex", "codex", None), ("claude:opus", "claude", "opus"), ("claude", "claude", None)]
# (gap, backend, model, outcome, cause, cost in USD, tokens in)
DISPATCHES = [
    ("INFRA-1", "claude", "opus", "shipped", "", 0.25, 1200),
    ("INFRA-1", "claude", "opus", "ci_failed", "tests-failed", None, None),
    ("DOCS-1", "codex", None, "killed", "timeout", 0.5, 300),
    ("DOCS-1", "claude", None, "stalled", "", None, None),
]


def json_commands() -> dict[str, argparse.ArgumentParser]:
    """Every sub-command that accepts ``--json``, by name."""
    parser = cli.build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    choices: dict[str, argparse.ArgumentParser] = sub.choices
    return {
        name: p
        for name, p in choices.items()
        if any("--json" in a.option_strings for a in p._actions)
    }


def objects(node: object, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema of ``node`` that lists properties, with where it is."""
    if isinstance(node, dict):
        if "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from objects(value, f"{where}/{i}")


def output(capsys: pytest.CaptureFixture[str], command: str, *argv: str) -> list[Any]:
    """What ``chump <command> --json <argv>`` prints, each document validated against the
    command's schema: one per line for JSON Lines commands, else exactly one."""
    capsys.readouterr()
    status = cli.main([command, "--json", *argv])
    out, err = capsys.readouterr()
    assert status in (0, 2), err
    assert not CONTROL.search(out), "JSON escapes control characters: no terminal sees them"
    docs = (
        [json.loads(line) for line in out.splitlines()] if command in LINES else [json.loads(out)]
    )
    validator = jsonschema.Draft202012Validator(
        schema(command), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for doc in docs:
        validator.validate(doc)
    return docs


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/gaps.yaml").write_text(BACKLOG)
    (tmp_path / "pyproject.toml").write_text(ROUTING)
    return tmp_path


def fill(repo: Path) -> None:
    """Ended dispatches as an orchestrator leaves them: the row (cost, tokens), its routing
    outcome and its stored reflection; plus one dispatch still in flight."""
    with Store.for_repo(repo) as store:
        for gap, backend, model, outcome, cause, usd, tokens in DISPATCHES:
            effort = "s" if gap.startswith("INFRA") else "m"
            branch = f"chump/{gap.lower()}"
            fields: dict[str, object] = {"effort": effort, "priority": "P1", "model": model}
            dispatch_id = store.add_dispatch(gap, branch, str(repo), backend, "h:1:1", **fields)
            r = reflection.build(
                gap_id=gap,
                effort=effort,
                backend=backend,
                outcome=Outcome(outcome, 7 if outcome == "shipped" else None, cause=cause),
                duration_s=600.0,
                parallel_siblings=1,
                report={"total_cost_usd": usd} if usd is not None else {},
                model=model,
                dispatch_id=dispatch_id,
                tail=["\x1b[31mERROR\x1b[0m: it broke"] if cause else (),
            )
            usage = {"cost_usd": usd, "tokens_in": tokens, "tokens_out": tokens}
            store.finish_with_reflection(dispatch_id, r, cause=r.cause, **usage)
            store.insert_reflection(r, reflection.directive(r))
        store.add_dispatch("DOCS-1", "chump/docs-1", str(repo), "claude", "h:1:1")


# --- what every schema is ---------------------------------------------------------------


def test_every_json_command_has_a_schema_and_every_schema_a_command() -> None:
    assert sorted(json_commands()) == names()
    shipped = {p.name.removesuffix(".schema.json") for p in HERE.glob("*.schema.json")}
    assert shipped == {*names(), *OTHERS}


@pytest.mark.parametrize("name", sorted(OTHERS))
def test_the_other_schemas_are_valid_and_named(name: str) -> None:
    found = schema(name)
    jsonschema.Draft202012Validator.check_schema(found)
    assert found["$id"] == f"{BASE}{name}.schema.json"
    assert found["title"]


@pytest.mark.parametrize("name", names())
def test_the_schema_is_valid_named_and_closed(name: str) -> None:
    found = schema(name)
    jsonschema.Draft202012Validator.check_schema(found)
    assert found["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert found["$id"] == f"{BASE}{name}.schema.json"
    assert found["title"] == f"chump {name} --json"
    assert found["description"]
    assert ("JSON Lines" in found["description"]) == (name in LINES)
    for where, node in objects(found):
        assert node.get("additionalProperties") is False, where
        keys = set(node["properties"])
        required = set(node.get("required", ()))
        for branch in node.get("oneOf", ()):
            required |= set(branch.get("required", ()))
        assert required == keys, f"{where}: every key is always there (null when unknown)"


# --- reflections ------------------------------------------------------------------------


def test_the_reflections_schema_names_every_reflection_field() -> None:
    exported = {f.name for f in dataclasses.fields(Reflection)}
    exported |= {"directive", "outcome_class", "error_pattern", "created_at"}
    assert set(schema("reflections")["properties"]) == exported


def test_reflections(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    assert output(capsys, "reflections", "--repo-root", str(repo)) == []
    fill(repo)
    lines = output(capsys, "reflections", "--repo-root", str(repo))
    assert [(r["gap_id"], r["outcome"]) for r in lines] == [
        (gap, outcome) for gap, _, _, outcome, _, _, _ in reversed(DISPATCHES)
    ]
    failed = lines[1]
    assert (failed["cause"], failed["model"], failed["cost_usd"]) == ("timeout", None, 0.5)
    assert failed["notes"].endswith("\x1b[31mERROR\x1b[0m: it broke")  # as the store keeps it


# --- validate ---------------------------------------------------------------------------


def test_validate(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    (missing,) = output(capsys, "validate", "--repo-root", str(repo), "--backlog", "empty.yaml")
    assert missing == {
        "backlog": str(repo / "empty.yaml"),
        "ok": False,
        "fatal": True,
        "gaps": None,
        "quarantined": [],
        "problems": [missing["problems"][0]],
        "known_problems": 0,
        "new_since": None,
    }
    (repo / "empty.yaml").write_text("gaps: []\n")
    (ok,) = output(capsys, "validate", "--repo-root", str(repo), "--backlog", "empty.yaml")
    assert (ok["ok"], ok["fatal"], ok["gaps"], ok["problems"]) == (True, False, 0, [])
    (bad,) = output(capsys, "validate", "--repo-root", str(repo))
    assert (bad["ok"], bad["fatal"], bad["gaps"], bad["quarantined"]) == (
        False,
        False,
        5,
        ["DOCS-2"],
    )


def test_validate_an_unreadable_backlog(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    (repo / "docs/gaps.yaml").write_text("gaps: [x\n")
    (broken,) = output(capsys, "validate", "--repo-root", str(repo))
    assert (broken["ok"], broken["fatal"], broken["gaps"]) == (False, True, None)
    assert [p["field"] for p in broken["problems"]] == ["yaml"]
    (repo / "docs/gaps.yaml").unlink()
    (repo / "docs/gaps.yaml").mkdir()  # a folder of backlog files, but none there
    (empty,) = output(capsys, "validate", "--repo-root", str(repo))
    (problem,) = empty["problems"]
    assert problem["text"].endswith("file: no *.yaml or *.yml files in this directory")
    assert (empty["fatal"], problem["fatal"], problem["line"]) == (True, True, 0)


def test_validate_an_unreadable_backlog_at_a_ref(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    (repo / "docs/gaps.yaml").write_text("gaps: [x\n")
    git(repo, "init", "-q")
    git(repo, "add", "docs/gaps.yaml")
    git(repo, "commit", "-qm", "broken")
    (broken,) = output(capsys, "validate", "--repo-root", str(repo), "--ref", "HEAD")
    shown = str(repo / "docs/gaps.yaml")  # as the working directory sees it
    assert (broken["backlog"], broken["fatal"]) == (f"{shown} at HEAD", True)
    assert [(p["path"], p["field"]) for p in broken["problems"]] == [(shown, "yaml")]


# --- ready ------------------------------------------------------------------------------


def test_ready(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    (repo / "empty.yaml").write_text("gaps: []\n")
    assert output(capsys, "ready", "--repo-root", str(repo), "--backlog", "empty.yaml") == []
    fill(repo)
    lines = output(capsys, "ready", "--repo-root", str(repo))
    assert [(g["id"], g["ready"], g["order"]) for g in lines] == [
        ("INFRA-1", False, None),  # shipped
        ("INFRA-2", True, 0),
        ("DOCS-1", False, None),  # in flight
        ("DOCS-2", False, None),  # quarantined
    ]
    asked = output(capsys, "ready", "--repo-root", str(repo), "INFRA-2", "NOPE-1")
    assert [(g["id"], g["reason"]) for g in asked] == [("INFRA-2", None), ("NOPE-1", "unknown id")]


# --- costs ------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["day", "backend", "gap"])
def test_costs(capsys: pytest.CaptureFixture[str], repo: Path, by: str) -> None:
    (total,) = output(capsys, "costs", "--repo-root", str(repo), "--by", by)
    assert total == {
        by: "(total)",
        "dispatches": 0,
        "usd": None,
        "tokens_in": None,
        "tokens_out": None,
        "tokens_cache": None,
    }
    fill(repo)
    groups = {g[by]: g for g in output(capsys, "costs", "--repo-root", str(repo), "--by", by)}
    total = groups.pop("(total)")
    assert (total["dispatches"], total["usd"], total["tokens_in"]) == (4, 0.75, 1500)
    assert sum(g["dispatches"] for g in groups.values()) == 4
    if by == "backend":
        assert set(groups) == {"claude", "claude:opus", "codex"}
        assert groups["claude"]["usd"] is None


# --- routes -----------------------------------------------------------------------------


def test_routes_without_history(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    (shown,) = output(capsys, "routes", "--repo-root", str(repo))
    codex, opus, claude = ({"arm": a, "spawner": s, "model": m} for a, s, m in ARMS)
    assert shown == {
        "history": False,
        "gap": None,
        "rule": None,
        "arms": [],
        "rules": [
            {
                "match": {"priority": [], "effort": ["s", "m"], "prefix": ["INFRA-"]},
                "arms": [codex, opus],
            }
        ],
        "default": [claude],
    }
    (shown,) = output(capsys, "routes", "--repo-root", str(repo), "--gap", "INFRA-1")
    assert (shown["gap"], shown["rule"]) == ("INFRA-1", 0)
    assert [(a["arm"], a["successes"], a["posterior_mean"]) for a in shown["arms"]] == [
        ("codex", 0, 0.5),
        ("claude:opus", 0, 0.5),
    ]
    assert not (repo / ".chump").exists()


def test_routes_with_history(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    fill(repo)
    (shown,) = output(capsys, "routes", "--repo-root", str(repo))
    stats = [(a["arm"], a["successes"], a["failures"]) for a in shown["arms"]]
    assert shown["history"] is True
    assert stats == [("claude", 0, 1), ("claude:opus", 1, 1), ("codex", 0, 1)]
    assert [a["posterior_mean"] for a in shown["arms"]] == [1 / 3, 0.5, 1 / 3]
    (shown,) = output(capsys, "routes", "--repo-root", str(repo), "--gap", "DOCS-1")
    assert (shown["rule"], [a["arm"] for a in shown["arms"]]) == (None, ["claude"])


# --- lessons ----------------------------------------------------------------------------


def test_lessons(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    assert output(capsys, "lessons", "--repo-root", str(repo)) == [
        {"history": False, "gap": None, "lessons": []}
    ]
    fill(repo)
    (shown,) = output(capsys, "lessons", "--repo-root", str(repo))
    status = cli.main(["lessons", "--repo-root", str(repo)])
    text = capsys.readouterr().out.splitlines()
    assert status == 0
    assert [lesson["text"] for lesson in shown["lessons"]] == text  # the same facts
    infra = shown["lessons"][0]
    assert infra == {
        "text": infra["text"],
        "domain": "infra",
        "effort": "s",
        "backend": "claude",
        "dispatches": 2,
        "shipped": 1,
        "ship_rate": 0.5,
        "median_minutes": infra["median_minutes"],
        "median_usd": 0.25,
        "failures": [{"cause": "tests-failed", "count": 1}],
    }
    (shown,) = output(capsys, "lessons", "--repo-root", str(repo), "--gap", "INFRA-2")
    assert [(x["domain"], x["effort"], x["backend"]) for x in shown["lessons"]] == [
        ("infra", "s", "claude")
    ]
