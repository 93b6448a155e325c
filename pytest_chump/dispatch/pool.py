"""The warm worktree pool (``worktree_pool = N``): finished worktrees are parked instead of
removed, and handed to later dispatches at their new branch with their git-ignored build
caches (``node_modules/``, ``target/``, ``.venv/``) still there.

A parked worktree is a linked worktree directly in ``.chump/pool/`` (named ``0``, ``1``, ...)
on a detached HEAD. Its dispatch's work was committed to its branch before it was parked
(``worktrees.remove`` saves first, and only a worktree on a branch is parked), and detaching
frees the branch: it may be merged, deleted or checked out elsewhere.

Taking one checks it out at the dispatch's branch where it lies, cleans it, and only then
moves it to the dispatch's path; parking moves it into the pool first and detaches it after.
A crash between two steps therefore leaves, in the pool only, a worktree still on a branch
with nothing uncommitted; the next take detaches it (``_settle``). Only a parked worktree
with nothing uncommitted is handed out: changes nobody committed (something wrote into it
after it was parked) are committed on a ``refs/chump/rescued/`` ref and the worktree is
removed instead, so nothing is lost and nothing stale reaches an agent.

Every function here runs under the caller's ``repo_lock``: two threads or two orchestrators
never take the same worktree, and the pool never holds more than N.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_chump.core.errors import ChumpError
from pytest_chump.core.run import clean_env, display_path
from pytest_chump.dispatch.worktrees import (
    Prepared,
    _answer,
    _branch_exists,
    _check_arg,
    _clear_path,
    _commit_of,
    _open,
    _undo,
    _worktrees,
)
from pytest_chump.state.locks import STATE_DIR

if TYPE_CHECKING:
    from git import Repo

POOL_DIR = "pool"
RESCUED = "refs/chump/rescued/"
RESCUE_MESSAGE = "chump: changes found in a parked worktree"

Warn = Callable[[str], None]


def pool_dir(repo_root: Path) -> Path:
    """``<repo>/.chump/pool``, where parked worktrees lie."""
    return repo_root / STATE_DIR / POOL_DIR


def parked(repo_root: Path) -> list[tuple[Path, str | None]]:
    """The pool's worktrees by slot (path, branch or None when detached, as parked ones are)."""
    with _open(repo_root) as repo:
        return _entries(repo, pool_dir(repo_root))


def parker(repo_root: Path, size: int) -> Callable[[Repo, Path], bool]:
    """The ``park`` step of ``worktrees.remove``: a saved worktree goes into the pool while it
    holds fewer than ``size``; one on a detached HEAD (a rebase stopped half-way?) never does."""
    pool = pool_dir(repo_root)

    def park(repo: Repo, worktree: Path) -> bool:
        import git

        registered = _worktrees(repo)
        on_branch = dict(registered).get(worktree) is not None
        if not on_branch or len(_in_pool(registered, pool)) >= size:
            return False
        pool.mkdir(parents=True, exist_ok=True)
        slot = _free_slot(pool)
        try:
            repo.git.worktree("move", str(worktree), str(slot))
        except git.CommandError:  # e.g. it holds submodules: removed as without a pool
            return False
        with contextlib.suppress(ChumpError):  # else the next take detaches it
            _detach(slot)
        return True

    return park


def take(
    repo_root: Path,
    worktree: Path,
    branch: str,
    base_ref: str,
    *,
    clean_all: bool = False,
    env: Mapping[str, str] | None = None,
    warn: Warn = print,
) -> Prepared | None:
    """A parked worktree with nothing uncommitted, checked out at ``branch`` and moved to
    ``worktree``; one with changes is rescued and removed instead (``warn`` says so).

    ``branch`` is created at ``base_ref``'s commit, or continued when it exists (a retry).
    Ignored files stay unless ``clean_all`` (``git clean -fdx``). None when the pool has
    nothing to give, or when ``worktrees.prepare`` must decide (``worktree`` exists already,
    or ``branch`` is checked out somewhere: a reuse, or an error saying why not).
    """
    _check_arg("branch", branch)
    _check_arg("base ref", base_ref)
    target = worktree.resolve()
    with _open(repo_root) as repo:
        repo.git.worktree("prune")
        listing = _listing(repo)
        heads = {path: head for path, _, head in listing}
        registered = [(path, on) for path, on, _ in listing]
        entries = _in_pool(registered, pool_dir(repo_root))
        free = _settle(entries)  # a branch a crash left checked out in the pool is free now
        if not free:
            return None
        outside = [(path, on) for path, on in registered if (path, on) not in entries]
        if target in dict(registered) or any(on == branch for _, on in outside):
            return None
        if target.is_symlink() or (target.exists() and not _empty_dir(target)):
            return None
        exists = _branch_exists(repo, branch)
    start = "" if exists else _commit_of(repo_root, base_ref)
    for slot in free:
        changes = _changes(slot)
        if changes:
            _rescue(repo_root, slot, changes, env, warn)
            continue
        try:
            return _hand_out(repo_root, slot, heads[slot], target, branch, start, clean_all)
        except ChumpError as exc:
            warn(f"{display_path(slot)}: pooled worktree not reused: {exc}")
    return None


def give_back(repo_root: Path, prepared: Prepared, size: int) -> None:
    """Undo a pooled ``take`` after a later dispatch step failed: what that step wrote is
    dropped, the worktree goes back to the pool (removed when it cannot), and the branch
    ``take`` created is deleted while it has no commits."""
    tree = prepared.worktree
    with _open(repo_root) as repo:
        repo.git.worktree("prune")
        if tree in dict(_worktrees(repo)[1:]):
            try:  # created moments ago: only files written by the failed step differ from git
                _git(tree, "checkout", "--quiet", "--force", "--detach")
                _git(tree, "clean", "-fdq")
                parked_again = _room(repo, pool_dir(repo_root), size) and _move_to_pool(
                    repo, tree, pool_dir(repo_root)
                )
            except ChumpError:
                parked_again = False
            if not parked_again:
                repo.git.worktree("remove", "--force", str(tree))
        _undo(repo, dataclasses.replace(prepared, created_worktree=False))


def empty(repo_root: Path, env: Mapping[str, str] | None = None, warn: Warn = print) -> int:
    """Remove every parked worktree (their ignored caches with them); how many were removed.
    Changes nobody committed are committed on a ``refs/chump/rescued/`` ref first."""
    removed = 0
    with _open(repo_root) as repo:
        repo.git.worktree("prune")
        entries = _entries(repo, pool_dir(repo_root))
    for slot, _ in entries:
        changes = _changes(slot)
        if changes:
            removed += _rescue(repo_root, slot, changes, env, warn)
            continue
        try:
            _git(repo_root, "worktree", "remove", str(slot))
        except ChumpError as exc:
            warn(f"kept {display_path(slot)}: {exc}")
            continue
        removed += 1
    return removed


# --- steps ----------------------------------------------------------------------------------


def _git(path: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """``git <args>`` in ``path``; a failure is a one-line ChumpError."""
    with _open(path) as repo:
        out = repo.git.execute(["git", *args], env=clean_env(env) if env is not None else None)
    return str(out)


def _listing(repo: Repo) -> list[tuple[Path, str | None, str]]:
    """(path, branch or None, HEAD commit) of every registered worktree, the main one first."""
    found = []
    for block in repo.git.worktree("list", "--porcelain").split("\n\n"):
        fields = dict(line.partition(" ")[::2] for line in block.splitlines())
        if "worktree" in fields:
            ref = fields.get("branch")
            on = ref.removeprefix("refs/heads/") if ref else None
            found.append((Path(fields["worktree"]).resolve(), on, fields.get("HEAD", "")))
    return found


def _entries(repo: Repo, pool: Path) -> list[tuple[Path, str | None]]:
    return _in_pool(_worktrees(repo), pool)


def _in_pool(
    registered: list[tuple[Path, str | None]], pool: Path
) -> list[tuple[Path, str | None]]:
    home = pool.resolve()
    found = [(p, on) for p, on in registered[1:] if p.parent == home and p.name.isdigit()]
    return sorted(found, key=lambda entry: int(entry[0].name))


def _room(repo: Repo, pool: Path, size: int) -> bool:
    return len(_entries(repo, pool)) < size


def _free_slot(pool: Path) -> Path:
    n = 0
    while os.path.lexists(pool / str(n)):
        n += 1
    return pool / str(n)


def _move_to_pool(repo: Repo, tree: Path, pool: Path) -> bool:
    import git

    pool.mkdir(parents=True, exist_ok=True)
    try:
        repo.git.worktree("move", str(tree), str(_free_slot(pool)))
    except git.CommandError:
        return False
    return True


def _settle(entries: list[tuple[Path, str | None]]) -> list[Path]:
    """Detach pool worktrees a crash left on a branch; the pool's detached worktrees."""
    free = []
    for path, on in entries:
        if on is not None:
            try:
                _detach(path)
            except ChumpError:
                continue
        free.append(path)
    return free


def _detach(tree: Path) -> None:
    """Detach ``tree``'s HEAD at its commit, freeing its branch; files and index untouched
    (``git checkout --detach`` would stat every file)."""
    _git(tree, "update-ref", "--no-deref", "-m", "chump: parked", "HEAD", "HEAD")


def _empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _changes(slot: Path) -> list[str]:
    """What ``git status`` shows in ``slot`` (ignored files are not shown); [] when clean.
    The index it refreshed is not written: the check-out after it does not need it."""
    try:
        status = ["--no-optional-locks", "status", "--porcelain", "--untracked-files=normal"]
        return _git(slot, *status).splitlines()
    except ChumpError as exc:
        return [str(exc)]


def _hand_out(
    repo_root: Path,
    slot: Path,
    old: str,
    target: Path,
    branch: str,
    start: str,
    clean_all: bool,
) -> Prepared:
    """Check ``slot`` (at commit ``old``) out at ``branch`` (created at ``start`` when
    given), move it to ``target``; on failure it is left detached, a branch it created goes.

    No ``--force``: ``status`` found nothing to discard, and a late write is not discarded.
    ``git clean -fd`` runs only when a ``.gitignore`` changed: the worktree had no untracked
    file, and nothing else in a switch can leave one.
    """
    on_branch = False
    try:
        if start:
            _git(slot, "checkout", "--quiet", "-b", branch, start)
        else:
            _git(slot, "checkout", "--quiet", branch)
        on_branch = True
        if clean_all:
            _git(slot, "clean", "-fdxq")
        elif not _same(slot, old, "HEAD", ":(glob)**/.gitignore"):
            _git(slot, "clean", "-fdq")
        _clear_path(target, target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ChumpError(f"{target.parent}: cannot create it: {exc.strerror or exc}") from None
        _git(repo_root, "worktree", "move", str(slot), str(target))
    except ChumpError:
        if on_branch:
            with contextlib.suppress(ChumpError):
                _detach(slot)
                with _open(repo_root) as repo:
                    _undo(repo, Prepared(slot, branch, bool(start), False, "", start))
        raise
    created = bool(start)
    return Prepared(target, branch, created, True, "" if created else "branch", start, True)


def _same(tree: Path, old: str, new: str, pathspec: str) -> bool:
    """Whether commits ``old`` and ``new`` agree on the files ``pathspec`` matches."""
    with _open(tree) as repo:
        return _answer(repo.git.diff, "--quiet", old, new, "--", pathspec)


def _rescue(
    repo_root: Path, slot: Path, changes: list[str], env: Mapping[str, str] | None, warn: Warn
) -> int:
    """Commit what changed in parked ``slot`` on a rescue ref, then remove it; 1 if removed."""
    shown = display_path(slot)
    what = ", ".join(line.strip() for line in changes[:3]) + (", ..." if len(changes) > 3 else "")
    try:
        _git(slot, "add", "-A", env=env)
        _git(slot, "commit", "--quiet", "--no-verify", "-m", RESCUE_MESSAGE, env=env)
        sha = _git(slot, "rev-parse", "HEAD")
        ref = f"{RESCUED}pool-{slot.name}-{sha[:12]}"
        _git(repo_root, "update-ref", ref, sha)
        _git(repo_root, "worktree", "remove", str(slot))
    except ChumpError as exc:
        warn(f"kept {shown}: not reused: it has changes nobody committed ({what}): {exc}")
        return 0
    warn(f"removed {shown} instead of reusing it: its changes ({what}) are committed on {ref}")
    return 1
