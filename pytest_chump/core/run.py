"""The one place chump runs short-lived commands (git and friends): argv lists, never a shell.

Failures raise :class:`~pytest_chump.core.errors.ChumpError` naming the command and its stderr.
Variables git exports to hooks (``GIT_DIR`` and co.) are stripped so a command run from a
hook acts on the repository it is pointed at, not on the one that fired the hook.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_chump.core.errors import ChumpError, UsageError

HOOK_GIT_VARS: tuple[str, ...] = (
    "GIT_DIR",
    "GIT_INDEX_FILE",
    "GIT_WORK_TREE",
    "GIT_PREFIX",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
)


def clean_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A copy of ``base`` (default: os.environ) without hook git variables, plus ``extra``."""
    env = {
        k: v for k, v in (os.environ if base is None else base).items() if k not in HOOK_GIT_VARS
    }
    env.update(extra)
    return env


def run(
    argv: Sequence[str],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 60.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and capture its output as text; raise ChumpError when it fails and ``check``."""
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=clean_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        raise ChumpError(f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise ChumpError(f"{' '.join(argv)}: timed out after {timeout:g}s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit status {proc.returncode}"
        raise ChumpError(f"{' '.join(argv)}: {reason}")
    return proc


def repo_root(
    given: object = None, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Path:
    """The repository to act on: ``given`` (``--repo-root``), else env ``CHUMP_REPO_ROOT``,
    else ``cwd``; then its git top level (see :func:`find_repo_root`)."""
    env = os.environ if env is None else env
    chosen = given or env.get("CHUMP_REPO_ROOT")
    start = Path(str(chosen)) if chosen else (cwd or Path.cwd())
    if chosen and not start.is_dir():
        raise UsageError(f"--repo-root: {start}: not a directory")
    return find_repo_root(start)


def find_repo_root(start: Path) -> Path:
    """The top of the git work tree containing ``start``, or ``start`` itself outside git."""
    try:
        proc = run(["git", "rev-parse", "--show-toplevel"], cwd=start, check=False)
    except ChumpError:  # no git on this machine: behave as outside a repository
        return start.resolve()
    if proc.returncode == 0 and proc.stdout.strip():
        return Path(proc.stdout.strip()).resolve()
    return start.resolve()


def display_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
