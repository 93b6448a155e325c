"""What every chump git hook does first: forget git's hook variables, then decide whether to act.

Hooks fire in agents' worktrees too (they share the git dir) and can be switched off by the
user, so each one checks ``CHUMP_DISPATCH_DEPTH`` and the kill switch before doing anything.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pytest_chump import config
from pytest_chump.errors import ChumpError
from pytest_chump.proc import HOOK_GIT_VARS, find_repo_root

DEPTH_VAR = "CHUMP_DISPATCH_DEPTH"
DISABLE_VAR = "CHUMP_DISABLE"


def forget_hook_git_vars() -> None:
    """Drop ``GIT_DIR`` and co. so git calls act on the repository found from the cwd."""
    for name in HOOK_GIT_VARS:
        os.environ.pop(name, None)


def inside_agent() -> bool:
    """True when run by a dispatched agent's git (its worktree shares our hooks)."""
    return bool(os.environ.get(DEPTH_VAR, ""))


def repo_root(flag: str | None) -> Path:
    """``--repo-root``, else ``CHUMP_REPO_ROOT``, else the git top level of the cwd."""
    given = flag or os.environ.get("CHUMP_REPO_ROOT")
    start = Path(given) if given else Path.cwd()
    if not start.is_dir():
        raise config.UsageError(f"--repo-root: {start}: not a directory")
    return find_repo_root(start)


def disabled_reason(root: Path) -> str | None:
    """Why the hooks must do nothing here, or None; a bad configuration raises UsageError."""
    if os.environ.get(DISABLE_VAR, "").strip() == "1":
        return f"{DISABLE_VAR}=1"
    if not config.resolve(root, {}, os.environ).hooks:
        return "setting hooks = false"
    return None


def report(exc: ChumpError) -> int:
    """Print ``exc`` as ``chump: error:`` lines on stderr and return its exit status."""
    for line in exc.lines():
        print(f"chump: error: {line}", file=sys.stderr)
    return exc.exit_code


def say_disabled(reason: str) -> int:
    print(f"chump: hooks are disabled ({reason})")
    return 0
