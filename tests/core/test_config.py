"""Configuration precedence (flag > env > pyproject > default) and errors that name their source."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chump.core import config, config_sources
from pytest_chump.core.errors import UsageError


def test_defaults(tmp_path: Path) -> None:
    s = config_sources.resolve(tmp_path, {}, {}, {})
    assert (s.backlog, s.max_parallel, s.spawner, s.pr_provider) == (
        "docs/gaps.yaml",
        2,
        "claude",
        "github",
    )
    assert (s.base_ref, s.branch_prefix, s.picker_order) == (
        "origin/main",
        "chump/",
        "critical-path",
    )
    assert s.backlog_path == tmp_path / "docs/gaps.yaml"


def test_precedence_flag_over_env_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.chump]\nmax_parallel = 3\nspawner = 'codex'\nbase_ref = 'main'\n"
    )
    env = {"CHUMP_MAX_PARALLEL": "5", "CHUMP_SPAWNER": "aider"}
    s = config_sources.resolve(tmp_path, {"max_parallel": "7"}, env)
    assert s.max_parallel == 7  # flag
    assert s.spawner == "aider"  # env beats pyproject
    assert s.base_ref == "main"  # pyproject beats default


def test_reference_env_names_are_honoured(tmp_path: Path) -> None:
    env = {
        "CHUMP_DISPATCH_CAPACITY": "4",
        "CHUMP_PICKER_BIAS_THRESHOLD": "0.5",
        "CHUMP_PICKER_BIAS_WINDOW": "20",
    }
    s = config_sources.resolve(tmp_path, {}, env, {})
    assert (s.max_parallel, s.bias_threshold, s.bias_window) == (4, 0.5, 20)


def test_empty_env_value_is_ignored(tmp_path: Path) -> None:
    assert config_sources.resolve(tmp_path, {}, {"CHUMP_MAX_PARALLEL": ""}, {}).max_parallel == 2


@pytest.mark.parametrize(
    ("flags", "env", "table", "message"),
    [
        ({"max_parallel": "two"}, {}, {}, "--max-parallel: expected an integer, got 'two'"),
        (
            {},
            {"CHUMP_MAX_PARALLEL": "-1"},
            {},
            "env CHUMP_MAX_PARALLEL: must be at least 0, got -1",
        ),
        ({}, {}, {"max_parallel": True}, "[tool.chump] max_parallel: expected an integer"),
        ({}, {}, {"picker_order": "random"}, "expected one of critical-path, declared, effort"),
        ({}, {}, {"kind": "robots"}, "[tool.chump] kind: expected one of user, system, any"),
        ({}, {"CHUMP_PICKER_BIAS_THRESHOLD": "2"}, {}, "expected a number from 0 to 1"),
        ({"branch_prefix": "../evil/"}, {}, {}, "--branch-prefix: expected a branch prefix"),
        (
            {"worktree_root": "/abs"},
            {},
            {},
            "--worktree-root: expected a path inside the repository",
        ),
        ({}, {}, {"max_paralel": 3}, "[tool.chump] max_paralel: unknown setting (valid: backlog,"),
    ],
)
def test_bad_values_name_their_source(
    tmp_path: Path,
    flags: dict[str, object],
    env: dict[str, str],
    table: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(UsageError) as info:
        config_sources.resolve(tmp_path, flags, env, table)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_broken_pyproject_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.chump\n")
    with pytest.raises(UsageError, match=r"pyproject\.toml: cannot read"):
        config_sources.resolve(tmp_path, {}, {})


def test_every_setting_has_help_and_a_parser() -> None:
    for f in config.declared():
        assert f.metadata["help"], f.name
        if f.metadata["flag"] and config.default_of(f) is not None:
            f.metadata["parse"](config.default_of(f))  # the default itself is valid
