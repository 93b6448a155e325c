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
def file_lock(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed), waiting for it; with
    ``wait=False`` yield False at once, holding nothing, when another holds it (True when
    held). Two threads of one process exclude each other too: each opens its own file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            held = True  # released when the file is closed
        except BlockingIOError:
            held = False
        yield held


def repo_lock(repo_root: Path, wait: bool = True) -> contextlib.AbstractContextManager[bool]:
    """Held around chump's worktree add/prune/remove, the warm pool's moves, the merge gate's
    fetches and pushes, in one repository: git's own locking leaves windows where these break
    each other. A prune deletes a half-created worktree; and ``git worktree add`` first writes
    the new worktree's HEAD as a placeholder (the null object id, git 2.39) and only then
    points it at its commit, and a fetch in that window fails (``bad object
    worktrees/<id>/HEAD``: its connectivity check walks every worktree's HEAD). That window
    is the add's first milliseconds, not its checkout: the git provider's poll, on the loop
    thread, fetches without this lock when a worker holds it (``wait=False``), under
    :func:`fetch_lock` alone, and tries again at its next poll when the fetch failed."""
    return file_lock(state_dir(repo_root) / "repo.lock", wait)


def fetch_lock(repo_root: Path) -> contextlib.AbstractContextManager[bool]:
    """Held by every writer of chump's own refs (``core.remote_refs.NAMESPACE``: fetches and
    the merge gate's update after a push), and by the git provider while it lists them: two
    fetches at once fail on each other's refs (``cannot lock ref ...: is at X but expected
    Y``), and a listing during another's ``--prune`` would see a merged branch gone before the
    base that has it. Never held around a worktree operation, so waiting for it is waiting for
    at most one fetch. Taken after :func:`repo_lock` by whoever takes both."""
    return file_lock(state_dir(repo_root) / "fetch.lock")
