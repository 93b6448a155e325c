"""The built-in prompt: lessons from earlier dispatches, and a prompt even without history."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pytest_chump.core.config import Settings
from pytest_chump.core.plugins import get_plugin_manager
from pytest_chump.core.protocols import Dispatch
from pytest_chump.dispatch.plugin import chump_build_prompt
from pytest_chump.dispatch.prompt import backlog_file
from pytest_chump.state.store import Store
from tests.learn.test_lessons import GAP, ended


def prompt(tmp_path: Path, lessons: bool = True) -> str:
    settings = Settings(repo_root=tmp_path, lessons=lessons)
    dispatch = Dispatch(GAP, "chump/infra-9", tmp_path / "wt", "claude", 0.0)
    text: str = get_plugin_manager(env={}).hook.chump_build_prompt(
        gap=GAP, dispatch=dispatch, settings=settings
    )
    return text


def test_prompt_has_lessons_only_with_history_and_when_enabled(tmp_path: Path) -> None:
    assert "Lessons" not in prompt(tmp_path)
    assert not (tmp_path / ".chump").exists()
    with Store.for_repo(tmp_path) as store:
        assert "Lessons" not in prompt(tmp_path)
        ended(store, "INFRA-1", "claude", "killed", "timeout", minutes=45)
        ended(store, "INFRA-2", "codex", "shipped")
    text = prompt(tmp_path)
    assert "Lessons from earlier dispatches:\n- infra/s with claude: 0 of 1 shipped (0%), " in text
    assert "codex" not in text
    assert "Lessons" not in prompt(tmp_path, lessons=False)


def test_prompt_survives_an_unreadable_history(tmp_path: Path) -> None:
    (tmp_path / ".chump").mkdir()
    (tmp_path / ".chump" / "chump.db").write_bytes(b"not a database at all" * 100)
    dispatch = Dispatch(GAP, "chump/infra-9", tmp_path, "claude", 0.0)
    text = chump_build_prompt(GAP, dispatch, Settings(repo_root=tmp_path))
    assert text.startswith("You are working on gap INFRA-9")
    assert "Lessons" not in text


def test_the_backlog_file_named_is_the_gaps_own_relative_to_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file a gap was read from, relative to the repository, symlinks resolved (from any
    working directory); the configured backlog when it lies outside."""
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    (repo / "docs" / "gaps").mkdir(parents=True)
    elsewhere.mkdir()
    link = tmp_path / "link"
    link.symlink_to(repo)
    own = dataclasses.replace(GAP, source=str(link / "docs" / "gaps" / "infra-9.yaml"))
    settings = Settings(repo_root=link)
    assert backlog_file(settings, own) == "docs/gaps/infra-9.yaml"
    assert backlog_file(settings, own) == "docs/gaps/infra-9.yaml"  # (remembered)
    outside = dataclasses.replace(GAP, source=str(elsewhere / "gaps.yaml"))
    assert backlog_file(settings, outside) == settings.backlog
    (repo / "sub").mkdir()
    (elsewhere / "sub").symlink_to(tmp_path)  # here "sub" leads out of the repository
    relative = Settings(repo_root=Path("."), backlog="gaps.yaml")
    gap = dataclasses.replace(GAP, source="sub/gaps.yaml")
    monkeypatch.chdir(repo)
    assert backlog_file(relative, gap) == "sub/gaps.yaml"
    monkeypatch.chdir(elsewhere)
    assert backlog_file(relative, gap) == "gaps.yaml"
