"""``chump dispatch``: pick ready gaps and dispatch them; dry run by default, as in the reference.

``--no-dry-run`` starts agents; ``--watch`` keeps refilling slots until nothing is in flight
and nothing is ready, then prints the summary table and totals. SIGINT/SIGTERM stop
dispatching, stop the agents (TERM, grace, KILL), record them as killed and exit 130/143.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pytest_chump.backlog import Backlog
from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.model import Gap
from pytest_chump.loop.app import App, display_path

if TYPE_CHECKING:
    from pytest_chump.loop.orchestrator import Orchestrator


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("dispatch", help="dispatch ready gaps to agents (dry run by default)")
    add_setting_flags(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run",
        dest="dry_run",
        action="store_true",
        default=True,
        help="print WOULD DISPATCH lines only (default)",
    )
    mode.add_argument(
        "--no-dry-run",
        "--execute",
        dest="dry_run",
        action="store_false",
        help="create worktrees and start agents",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="keep running: refill slots as work lands until nothing is ready or in flight",
    )
    parser.add_argument("--no-reflect", action="store_true", help="do not write reflections")
    parser.add_argument(
        "--exclusive",
        action="store_true",
        help="be the repository's only exclusive orchestrator: if one runs, nudge it to "
        "re-read the backlog and exit (the git hooks use this)",
    )
    parser.set_defaults(run=run)


def header(app: App, backlog: Backlog, picked: list[Gap], mode: str) -> str:
    gaps = backlog.gaps
    open_count = sum(1 for g in gaps if g.status == "open")
    return (
        f"chump ({mode}): {len(gaps)} total gaps, {open_count} open, "
        f"{len(backlog.done_ids())} done; would dispatch {len(picked)} "
        f"of max-parallel {app.settings.max_parallel}"
    )


def would_dispatch(app: App, gap: Gap) -> str:
    where = display_path(app.worktree_for(gap))
    return (
        f"WOULD DISPATCH: {gap.id} (prio={gap.priority} effort={gap.effort}) in {where}"
        f"  -- {gap.title}"
    )


def run(args: argparse.Namespace) -> int:
    app = App.create(setting_flags(args))
    app.spawner_factory()  # an unknown spawner name fails here, before anything else
    if not args.dry_run:
        return execute(app, watch=args.watch, reflect=not args.no_reflect, sole=args.exclusive)
    backlog = app.load_backlog()
    picked = app.pick(backlog, app.settings.max_parallel)
    print(header(app, backlog, picked, "dry-run"))
    if not picked:
        print(
            "note: no pickable gaps: the backlog is exhausted, or every open P0-P2 gap is xl, "
            "blocked by a dependency or filtered out by kind",
            file=sys.stderr,
        )
    for gap in picked:
        print(would_dispatch(app, gap))
    return 0


def execute(app: App, *, watch: bool, reflect: bool = True, sole: bool = False) -> int:
    """Run the orchestrator; the exit status says how it ended."""
    from pytest_chump.dispatch.agent_env import check_depth
    from pytest_chump.state.orchestrator_lock import exclusive, nudge, running_pid

    check_depth(os.environ)
    app.check_repository()
    app.load_backlog()  # an invalid backlog fails here, before any state is created
    if not sole:
        return _execute(app, watch=watch, reflect=reflect)
    # a nudge before the loop's handler is in place must not kill us: the backlog is read
    # right after anyway
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    with exclusive(app.settings.state_dir) as mine:
        if mine:
            return _execute(app, watch=watch, reflect=reflect)
    pid = running_pid(app.settings.state_dir)
    if pid is not None and nudge(pid):
        print(f"chump: an orchestrator is running (pid {pid}); nudged it to re-read the backlog")
    else:
        print("chump: another orchestrator holds the lock; it will pick up the backlog")
    return 0


def _execute(app: App, *, watch: bool, reflect: bool) -> int:
    from pytest_chump.loop.orchestrator import Orchestrator
    from pytest_chump.loop.progress import Progress
    from pytest_chump.state.store import Store

    progress = Progress(live=watch and sys.stdout.isatty())
    with Store.for_repo(app.settings.repo_root) as store:
        orch = Orchestrator(
            app, store, app.spawner_factory(), app.provider(), progress, watch=watch
        )
        orch.finisher.reflect = reflect
        with _signals(orch) as received:
            orch.run()
            while orch.nudged.is_set() and not received:  # nudged as the loop was ending
                orch.run()
        if watch:
            progress.summary(orch.finisher.rows, orch.finisher.counts)
    if received:
        return 128 + received[0]
    return 1 if orch.finisher.counts["spawn_failures"] else 0


@contextmanager
def _signals(orch: Orchestrator) -> Iterator[list[int]]:
    """SIGINT/SIGTERM stop the orchestrator gracefully (the signal numbers are collected);
    SIGUSR1 nudges it to re-read the backlog."""
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        orch.stop(f"interrupted by {signal.Signals(signum).name}")

    def on_nudge(signum: int, frame: object) -> None:
        orch.nudge()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, on_nudge)
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
