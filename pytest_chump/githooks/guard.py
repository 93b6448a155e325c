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
