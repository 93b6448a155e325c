"""The built-in prompt: lessons from earlier dispatches, and a prompt even without history."""

from __future__ import annotations

from pathlib import Path

from pytest_chump.core.config import Settings
from pytest_chump.core.plugins import get_plugin_manager
from pytest_chump.core.protocols import Dispatch
from pytest_chump.dispatch.plugin import chump_build_prompt
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

