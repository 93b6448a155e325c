"""``chump install-hooks``: copy the plain pre-push and post-merge hooks (``scripts/`` next to
this module) into a repository.

For repositories that do not use pre-commit. The hooks directory is the one git uses
(``core.hooksPath`` and worktrees respected); a user's own hook is never replaced unless
``--force`` is given.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path

from pytest_chump.core.run import repo_root
from pytest_chump.core.run import run as run_command

HOOK_NAMES: tuple[str, ...] = ("pre-push", "post-merge")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "install-hooks", help="install the plain git hooks (pre-push, post-merge)"
    )
    parser.add_argument("--force", action="store_true", help="replace existing hooks that differ")
    parser.add_argument(
        "--repo-root",
        metavar="PATH",
        help="repository to install into (default: the git top level of .)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    hooks = hooks_dir(repo_root(args.repo_root))
    installed = [install(name, hooks, force=args.force) for name in HOOK_NAMES]
    return 0 if all(installed) else 2


def hooks_dir(root: Path) -> Path:
    """The directory git runs hooks from for ``root`` (created when missing)."""
    where = run_command(["git", "rev-parse", "--git-path", "hooks"], cwd=root).stdout.strip()
    path = (root / where).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def packaged(name: str) -> bytes:
    return resources.files("pytest_chump.githooks").joinpath("scripts").joinpath(name).read_bytes()


def install(name: str, hooks: Path, force: bool) -> bool:
    """Write hook ``name``; False when a different existing hook was kept."""
    target, script = hooks / name, packaged(name)
    verb = "installed"
    if target.exists() or target.is_symlink():
        if current(target) == script:
            target.chmod(target.stat().st_mode | 0o111)
            print(f"already installed {target}")
            return True
        if not force:
            print(f"kept existing {target} (use --force to replace it)", file=sys.stderr)
            return False
        verb = "replaced"
    write_executable(target, script)
    print(f"{verb} {target}")
    return True


def write_executable(target: Path, data: bytes) -> None:
    """Replace ``target`` (a symlink itself, never the file it points to) atomically."""
    scratch = target.with_name(f".{target.name}.chump-new")
    scratch.write_bytes(data)
    scratch.chmod(0o755)
    os.replace(scratch, target)


def current(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # a dangling symlink or an unreadable file: different
        return None
