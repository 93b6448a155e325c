"""The environment an agent runs in: the dispatch markers, the bot's git identity, and the
depth guard that stops an agent from dispatching agents of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_chump.core.errors import ChumpError
from pytest_chump.core.run import clean_env

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings

DEPTH_VAR = "CHUMP_DISPATCH_DEPTH"


def check_depth(env: Mapping[str, str]) -> None:
    """Refuse to dispatch from inside a dispatched agent (``CHUMP_DISPATCH_DEPTH`` >= 1)."""
    value = env.get(DEPTH_VAR, "").strip()
    depth = int(value) if re.fullmatch(r"[+-]?\d+", value) else int(bool(value))
    if depth >= 1:
        raise ChumpError(
            f"refusing to dispatch from inside a dispatched agent ({DEPTH_VAR}={value})"
        )


def agent_env(
    base: Mapping[str, str], settings: Settings, gap_id: str, branch: str, worktree: Path
) -> dict[str, str]:
    """``base`` without hook git variables, plus the dispatch markers and the bot identity."""
    markers = {DEPTH_VAR: "1", "CHUMP_GAP_ID": gap_id, "CHUMP_BRANCH": branch}
    return clean_env(base, **markers, **settings.bot_identity, CHUMP_WORKTREE=str(worktree))
