"""The agent's environment: dispatch markers, the bot identity, no hook variables, depth guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chump.core.config import Settings
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.run import HOOK_GIT_VARS
from pytest_chump.dispatch.agent_env import agent_env, check_depth


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (None, False),
        ("", False),
        (" ", False),
        ("0", False),
        ("-1", False),
        ("1", True),
        ("2", True),
        ("yes", True),
    ],
)
def test_check_depth(value: str | None, refused: bool) -> None:
    env = {} if value is None else {"CHUMP_DISPATCH_DEPTH": value}
    if refused:
        with pytest.raises(ChumpError, match=r"inside a dispatched agent \(CHUMP_DISPATCH_DEPTH="):
            check_depth(env)
    else:
        check_depth(env)


def test_agent_env_strips_every_hook_variable_and_adds_markers(tmp_path: Path) -> None:
    base = {name: "/x" for name in HOOK_GIT_VARS} | {"HOME": "/home/me"}
    env = agent_env(base, Settings(), "GAP-2", "chump/gap-2", tmp_path)
    assert not set(HOOK_GIT_VARS) & set(env)
    assert env["HOME"] == "/home/me"
    assert (env["CHUMP_GAP_ID"], env["CHUMP_BRANCH"]) == ("GAP-2", "chump/gap-2")
    assert env["CHUMP_WORKTREE"] == str(tmp_path)
    assert env["GIT_AUTHOR_NAME"] == env["GIT_COMMITTER_NAME"] == Settings().bot_name
    assert env["GIT_AUTHOR_EMAIL"] == env["GIT_COMMITTER_EMAIL"] == Settings().bot_email
    assert base["GIT_DIR"] == "/x"  # the input is not modified
