"""``chump cleanup``: remove what finished dispatches left behind, without ever destroying work.

Worktrees of ended dispatches are removed after their uncommitted changes are committed to
their branch; branches are deleted only when shipped and merged into the base; leases of
orchestrators that are gone are dropped, and so are the identity records of agents whose
dispatch ended and whose supervisor is gone. Dispatches of a crashed orchestrator are left for
``chump dispatch --no-dry-run --watch`` to resume. The warm worktree pool (``.chump/pool``) is
left alone, its size said; ``--pool`` empties it (changes found in a parked worktree are
committed on a ``refs/chump/rescued/`` ref first).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.run import display_path
from pytest_chump.dispatch import pool, worktrees
from pytest_chump.loop.app import App
from pytest_chump.state.database import DB_NAME
from pytest_chump.state.liveness import group_alive, stop_group
from pytest_chump.state.locks import STATE_DIR, repo_lock
from pytest_chump.state.rows import DispatchRow
from pytest_chump.state.store import Store

SAVE_MESSAGE = "chump cleanup: save uncommitted work"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "cleanup", help="remove worktrees and merged branches of finished dispatches"
    )
    add_setting_flags(parser, names=("base_ref",))
    parser.add_argument(
        "--pool",
        action="store_true",
        help="also remove the worktrees parked in the warm pool (.chump/pool), their caches too",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    app = App.create(setting_flags(args))
    root = app.settings.repo_root
    _tend_pool(root, app.settings.bot_identity, empty=args.pool)
    if not (root / STATE_DIR / DB_NAME).exists():
        print("nothing to clean (no .chump/chump.db)")
        return 0
    with Store.for_repo(root) as store:
        for gap_id in store.prune_stale_leases():
            print(f"released stale lease of {gap_id}")
        ended = store.dispatches("outcome IS NOT NULL", order="id DESC")
        orphans = [r for r in store.unfinished() if not store.live(r.owner)]
    for row in ended:  # stragglers an ended dispatch's agent left (its teardown was cut short)
        if _recorded(row) and stop_group(row.pid, row.pid_start):
            print(f"stopped processes {row.gap_id}'s agent left running (group {row.pid})")
    gaps_of: dict[Path, set[str]] = {}
    for row in ended:
        gaps_of.setdefault(Path(row.worktree), set()).add(row.gap_id)
    _remove_worktrees(root, gaps_of, app.settings.bot_identity)
    _delete_branches(root, {r.branch for r in ended if r.outcome == "shipped"}, app)
    _forget_agent_records(ended)
    if orphans:
        print(
            f"{len(orphans)} dispatch(es) of a stopped orchestrator are unfinished: "
            "run `chump dispatch --no-dry-run --watch` to resume them"
        )
    return 0


def _remove_worktrees(root: Path, gaps_of: dict[Path, set[str]], identity: dict[str, str]) -> None:
    """Remove the worktrees ended dispatches left, each only if nothing uses it right now.

    A gap retried later works in the same path: under the repository lock (which a new
    dispatch takes to create its worktree, after its lease), a path whose gap is leased or
    has an unfinished dispatch is kept.
    """
    live = {path for path, _ in worktrees.list_worktrees(root)}
    env = {**os.environ, **identity}
    for path in sorted(set(gaps_of) & live):
        with repo_lock(root), Store.for_repo(root) as store:
            busy = _in_use(store, path, gaps_of[path])
            problem = (
                f"in use by a dispatch in flight ({busy})"
                if busy
                else worktrees.remove(root, path, message=SAVE_MESSAGE, env=env)
            )
        print(f"kept {path}: {problem}" if problem else f"removed worktree {path}")


def _tend_pool(root: Path, identity: dict[str, str], empty: bool) -> None:
    """Say how many worktrees the pool holds, or (``empty``) remove them."""
    if not pool.pool_dir(root).is_dir():
        return
    if empty:
        with repo_lock(root):  # taking a parked worktree holds it too
            removed = pool.empty(root, {**os.environ, **identity}, warn=print)
        if removed:
            print(f"removed {removed} worktree(s) parked in the pool")
        return
    parked = pool.parked(root)
    if parked:
        where = display_path(pool.pool_dir(root))
        print(f"{len(parked)} worktree(s) parked in the pool ({where}); --pool removes them")


def _in_use(store: Store, path: Path, gaps: set[str]) -> str:
    """The gap working in ``path`` now (leased, or with an unfinished dispatch), else ""."""
    for row in store.unfinished():
        if Path(row.worktree) == path:
            return row.gap_id
    leased = set(store.live_leases()) & gaps
    return min(leased) if leased else ""


def _recorded(row: DispatchRow) -> bool:
    """Whether the supervisor's record of ``row``'s agent is still there: cleanup forgets it
    once it looked, so each ended dispatch is looked at for stragglers once, not forever."""
    record = row.meta_dict.get("record")
    return isinstance(record, str) and Path(record).exists()


def _forget_agent_records(ended: list[DispatchRow]) -> None:
    """Delete the supervisors' records of ended dispatches (nobody will adopt them)."""
    forgotten = 0
    for row in ended:
        record = row.meta_dict.get("record")
        if isinstance(record, str) and not group_alive(row.pid, row.pid_start):
            with contextlib.suppress(FileNotFoundError):
                Path(record).unlink()
                forgotten += 1
    if forgotten:
        print(f"removed {forgotten} agent record(s) of ended dispatches")


def _delete_branches(root: Path, branches: set[str], app: App) -> None:
    for branch in sorted(branches):
        try:
            if worktrees.branch_exists(root, branch) and worktrees.delete_branch_if_merged(
                root, branch, app.settings.base_ref
            ):
                print(f"deleted merged branch {branch}")
        except ChumpError as exc:
            print(f"kept branch {branch}: {exc}")
