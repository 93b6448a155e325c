"""The README is the user's manual: it must name every setting, hook and pre-commit hook id."""

from __future__ import annotations

import inspect

import yaml

from pytest_chump import hookspecs
from pytest_chump.core import config
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_table() -> None:
    for f in config.declared():
        row = next((line for line in README.splitlines() if line.startswith(f"| `{f.name}` |")), "")
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
