"""What every chump git hook does first: forget git's hook variables, then decide whether to act.

Hooks fire in agents' worktrees too (they share the git dir) and can be switched off by the
user, so each one checks ``CHUMP_DISPATCH_DEPTH`` and the kill switch before doing anything.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_chump.core import config_sources
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.run import HOOK_GIT_VARS, repo_root
from pytest_chump.dispatch.agent_env import DEPTH_VAR

DISABLE_VAR = "CHUMP_DISABLE"


def forget_hook_git_vars() -> None:
    """Drop ``GIT_DIR`` and co. so git calls act on the repository found from the cwd."""
    for name in HOOK_GIT_VARS:
        os.environ.pop(name, None)


def inside_agent() -> bool:
    """True when run by a dispatched agent's git (its worktree shares our hooks)."""
    return bool(os.environ.get(DEPTH_VAR, ""))


def disabled_reason(root: Path) -> str | None:
    """Why the hooks must do nothing here, or None; a bad configuration raises UsageError."""
    if os.environ.get(DISABLE_VAR, "").strip() == "1":
        return f"{DISABLE_VAR}=1"
    if not config_sources.resolve(root, {}, os.environ).hooks:
        return "setting hooks = false"
    return None


def report(exc: ChumpError) -> int:
    """Print ``exc`` on stderr (see ``ChumpError.messages``) and return its exit status."""
    for line in exc.messages():
        print(line, file=sys.stderr)
    return exc.exit_code


def say_disabled(reason: str) -> int:
    print(f"chump: hooks are disabled ({reason})")
    return 0


def begin(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, *, lenient_config: bool = False
) -> tuple[argparse.Namespace, Path] | int:
    """Everything a hook does before its job: (arguments, repo root), or the exit status to
    return at once (inside an agent, switched off, or a user mistake already reported).

    ``lenient_config``: a bad configuration does not stop the hook (the validator reports it).
    """
    forget_hook_git_vars()
    if inside_agent():
        return 0
    try:
        args = parser.parse_args(argv)
        root = repo_root(args.repo_root)
        reason = _disabled(root, lenient_config)
    except ChumpError as exc:
        return report(exc)
    return say_disabled(reason) if reason is not None else (args, root)


def _disabled(root: Path, lenient_config: bool) -> str | None:
    if not lenient_config:
        return disabled_reason(root)
    with contextlib.suppress(ChumpError):
        return disabled_reason(root)
    return None
