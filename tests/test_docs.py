"""The README is the user's manual: it must name every setting, hook and pre-commit hook id."""

from __future__ import annotations

import inspect

import yaml

from pytest_chump import hookspecs
from pytest_chump.core import config
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_table() -> None:
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    for f in config.declared():
        row = next(
            (line for line in section.splitlines() if line.startswith(f"| `{f.name}` |")), ""
        )
        assert row, f"README has no configuration row for {f.name}"
        assert f"`{config.shown_default(f)}`" in row, f.name
        for env in config.env_names(f):
            assert f"`{env}`" in row, (f.name, env)


def test_every_hook_is_documented() -> None:
    for name, _ in inspect.getmembers(hookspecs, inspect.isfunction):
        if name.startswith("chump_"):
            assert f"`{name}(" in README, name


def test_every_pre_commit_hook_id_is_in_the_readme() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    for hook in hooks:
        assert f"`{hook['id']}`" in README, hook["id"]


def test_readme_commands_are_the_ci_commands() -> None:
    ci = (ROOT / ".ci/run").read_text()
    block = README.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(block) == 2
    for command in block:
        assert command in ci, command


def test_the_third_party_backlog_source_example_works(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import types

    from pytest_chump.loop.app import App

    code = next(block for block in README.split("```python\n")[1:] if "LinearSource" in block)
    module = types.ModuleType("linear_plugin")
    issues = [
        {"identifier": "ENG-1", "title": "a", "priority": 1, "completed": True, "blocked_by": []},
        {
            "identifier": "ENG-2",
            "title": "b",
            "priority": 2,
            "completed": False,
            "blocked_by": ["ENG-1"],
        },
        {"identifier": "ENG-3", "title": "c", "priority": 7, "completed": False, "blocked_by": []},
    ]
    module.fetch_linear_issues = lambda team: issues  # type: ignore[attr-defined]
    exec(code.split("```", 1)[0], module.__dict__)
    app = App.create({"repo_root": str(tmp_path), "backlog_source": "linear"}, plugins=[module])
    backlog = app.load_backlog()
    assert [str(p) for p in backlog.problems] == [
        "linear:ENG: ENG-3.priority: unknown priority 'P7' (expected one of P0, P1, P2, P3, P4)"
    ]
    assert [g.id for g in app.pick(backlog, 5)] == ["ENG-2"]


def test_every_guarantee_names_a_test_that_exists() -> None:
    import re

    section = README.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", section)
    assert len(named) >= 15
    for path, name in named:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert f"def {name}(" in source, f"{path}::{name}"


def test_every_json_output_is_in_the_command_table_and_its_schema_named() -> None:
    import re

    from pytest_chump.core import schemas

    rows = [line for line in README.splitlines() if line.startswith("| `chump ")]
    for name in schemas.names():
        (row,) = (r for r in rows if r.startswith(f"| `chump {name} "))
        assert "[--json]" in row, name
    section = README.split("**Machine-readable output.**", 1)[1].split("\n\n", 1)[0]
    assert "pytest_chump/core/schemas/<command>.schema.json" in section
    said = section.split(" print JSON Lines", 1)[0].rsplit(". ", 1)[1]
    assert set(re.findall(r"`(\w+)`", said)) == schemas.LINES
