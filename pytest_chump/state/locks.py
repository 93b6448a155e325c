"""``.chump/`` (git-ignored) and the cross-process locks kept in it; the kernel releases a
lock when its holder dies, so a crash never leaves a stale one behind."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from pytest_chump.core.errors import ChumpError

STATE_DIR = ".chump"


def state_dir(repo_root: Path) -> Path:
    """``<repo>/.chump``, created with a catch-all .gitignore so its files never show up."""
    state = repo_root / STATE_DIR
    try:
        state.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ChumpError(f"{state}: not a directory (chump keeps its state there)") from None
    except OSError as exc:
        raise ChumpError(f"{state}: cannot create it: {exc.strerror or exc}") from None
    ignore = state / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# chump's state: never commit it\n*\n", encoding="utf-8")
    return state


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed), waiting for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        yield


def repo_lock(repo_root: Path) -> contextlib.AbstractContextManager[None]:
    """Held around chump's worktree add/prune/remove, fetches and pushes in one repository:
    git's own locking leaves windows where these break each other (a prune deleting a
    half-created worktree, a fetch failing while a worktree is added)."""
    return file_lock(state_dir(repo_root) / "repo.lock")
