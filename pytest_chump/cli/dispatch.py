"""``chump dispatch``: pick ready gaps and dispatch them; dry run by default, as in the reference.

``--no-dry-run`` starts agents; ``--watch`` keeps refilling slots until nothing is in flight
and nothing is ready, then prints the summary table and totals. SIGINT/SIGTERM stop
dispatching, stop the agents (TERM, grace, KILL), record them as killed and exit 130/143.
``--json``: one JSON object on stdout at the end, the progress lines on stderr
(see :mod:`pytest_chump.cli.dispatch_json`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from pytest_chump.cli import dispatch_json
from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.errors import UsageError
from pytest_chump.core.model import Gap
from pytest_chump.core.records import Backlog
from pytest_chump.core.redact import printable
from pytest_chump.core.run import display_path
from pytest_chump.dispatch.prompt import load_template
from pytest_chump.dispatch.setup import WorktreeSetup
from pytest_chump.loop.app import App
from pytest_chump.loop.plan import (
    existing_store,
    header,
    nothing_to_do,
    occupancy,
    plan,
    quarantine_note,
)

if TYPE_CHECKING:
    from pytest_chump.loop.orchestrator import Orchestrator
    from pytest_chump.state.store import Store


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
        "--events",
        metavar="PATH|-",
        help="also write every event (dispatched, state, outcome, ...) as a JSON line to PATH "
        "(appended) or to stdout with '-' (the progress lines then go to stderr)",
    )
    parser.add_argument(
        "--exclusive",
        action="store_true",
        help="be the repository's only exclusive orchestrator: if one runs, nudge it to "
        "re-read the backlog and exit (the git hooks use this)",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object on stdout, progress on stderr"
    )
    parser.set_defaults(run=run)


def would_dispatch(app: App, gap: Gap) -> str:
    where = display_path(app.worktree_for(gap))
    return (
        f"WOULD DISPATCH: {gap.id} (prio={gap.priority} effort={gap.effort}) in {where}"
        f"  -- {printable(gap.title)}"
    )


def run(args: argparse.Namespace) -> int:
    app = App.create(setting_flags(args))
    if args.watch and args.dry_run:
        raise UsageError("--watch needs --no-dry-run: a dry run starts nothing to watch")
    if args.events is not None and args.dry_run:
        raise UsageError("--events needs --no-dry-run: a dry run has no events")
    app.spawner_factory()  # an unknown spawner name fails here, before anything else
    load_template(app.settings)  # so does a prompt template with an unknown placeholder
    s = app.settings
    WorktreeSetup.from_settings(s.repo_root, s.worktree, s.worktree_include)  # and bad set-up
    if not args.dry_run:
        if args.events == "-" and args.json:
            raise UsageError("--events - and --json both want stdout: give --events a PATH")
        with _events_to(args.events) as writer:
            return execute(
                app,
                watch=args.watch,
                reflect=not args.no_reflect,
                sole=args.exclusive,
                as_json=args.json,
                to=writer,
            )
    backlog = load(app)
    store = existing_store(app.settings.repo_root)
    try:
        the_plan = plan(app, backlog, occupancy(store))
    finally:
        if store is not None:
            store.close()
    if args.json:
        print(json.dumps(dispatch_json.planned(app, the_plan, "dry-run"), sort_keys=True))
        return 0
    print(header(the_plan, "dry-run"))
    if not the_plan.picks:
        print(nothing_to_do(the_plan))
    for gap in the_plan.picks:
        print(would_dispatch(app, gap))
    return 0


def load(app: App) -> Backlog:
    """The backlog (a fatal problem, or any with ``strict``, ends the command: exit 2), with
    one line on stderr when gaps with problems are quarantined."""
    backlog = app.load_backlog()
    note = quarantine_note(backlog)
    if note is not None:
        print(note, file=sys.stderr)
    return backlog


@contextmanager
def _events_to(target: str | None) -> Iterator[TextIO | None]:
    """The ``--events`` destination, opened before anything starts (a bad path: exit 2)."""
    if target is None or target == "-":
        yield sys.stdout if target == "-" else None
        return
    try:
        writer = open(target, "a", encoding="utf-8")  # noqa: SIM115  (closed below)
    except OSError as exc:
        raise UsageError(f"--events {target}: {exc.strerror or exc}") from None
    with writer:
        yield writer


def execute(
    app: App,
    *,
    watch: bool,
    reflect: bool = True,
    sole: bool = False,
    as_json: bool = False,
    to: TextIO | None = None,
) -> int:
    """Run the orchestrator; the exit status says how it ended."""
    from pytest_chump.dispatch.agent_env import check_depth
    from pytest_chump.state.orchestrator_lock import exclusive, nudge, running_pid

    check_depth(os.environ)
    app.check_repository()
    backlog = load(app)  # an unreadable backlog fails here, before any state is created
    if not sole:
        return _execute(app, backlog, watch=watch, reflect=reflect, as_json=as_json, to=to)
    # a nudge before the loop's handler is in place must not kill us: the backlog is read
    # right after anyway
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    with exclusive(app.settings.state_dir) as mine:
        if mine:
            return _execute(app, backlog, watch=watch, reflect=reflect, as_json=as_json, to=to)
    pid = running_pid(app.settings.state_dir)
    if pid is not None and nudge(pid):
        said = f"chump: an orchestrator is running (pid {pid}); nudged it to re-read the backlog"
    else:
        said = "chump: another orchestrator holds the lock; it will pick up the backlog"
    print(said, file=sys.stderr if as_json or to is sys.stdout else sys.stdout)
    if as_json:
        mode = "execute+watch" if watch else "execute"
        print(json.dumps(dispatch_json.deferred(mode, pid, said), sort_keys=True))
    return 0


def _execute(
    app: App,
    backlog: Backlog,
    *,
    watch: bool,
    reflect: bool,
    as_json: bool = False,
    to: TextIO | None = None,
) -> int:
    from pytest_chump.loop.orchestrator import Orchestrator
    from pytest_chump.loop.progress import Progress
    from pytest_chump.state.store import Store

    # with --json or --events -, stdout carries the JSON alone
    out = sys.stderr if as_json or to is sys.stdout else sys.stdout
    mode = "execute+watch" if watch else "execute"
    progress = Progress(out=out, live=watch and out.isatty())
    if to is not None:
        progress.events.writers.append(to)
    with Store.for_repo(app.settings.repo_root) as store:
        orch = Orchestrator(
            app, store, app.spawner_factory(), app.provider(), progress, watch=watch
        )
        orch.finisher.reflect = reflect
        orch.backlog = backlog
        orch.preflight()  # nothing starts before the provider and the spawners can work
        the_plan = plan(app, backlog, occupancy(store))
        print(header(the_plan, mode), file=out, flush=True)
        progress.events.emit(
            "run-started",
            mode=mode,
            max_parallel=app.settings.max_parallel,
            picks=[gap.id for gap in the_plan.picks],
        )
        if not the_plan.picks:
            print(nothing_to_do(the_plan), file=out, flush=True)
        with _signals(orch) as received:
            store.mark_nudgeable(orch.owner)  # its SIGUSR1 handler is in place now
            orch.run()
            while orch.nudged.is_set() and not received:  # nudged as the loop was ending
                orch.run()
        if watch:
            progress.summary(orch.finisher.in_dispatch_order(), orch.finisher.counts)
        broken = _broken_backends(store, orch) if not received else []
        summary = dispatch_json.ran(app, the_plan, mode, orch, store) if as_json else None
        store.close_circuits(orch.owner)  # the run ended: the next one tries them again
        if watch:
            _run_finished(app, orch, received)
        progress.events.store = None  # the store closes here; writers may still get lines
    from pytest_chump.reflect.notify import wait

    wait()  # deliveries still under way, within their timeouts
    for line in broken:
        print(line, file=sys.stderr, flush=True)
    status = 3 if broken else 1 if orch.finisher.counts["spawn_failures"] else 0
    status = 128 + received[0] if received else status
    if summary is not None:
        print(json.dumps(dispatch_json.exited(summary, status, orch, broken), sort_keys=True))
    return status


def _run_finished(app: App, orch: Orchestrator, received: list[int]) -> None:
    from pytest_chump.loop.events import notify

    counts = orch.finisher.counts
    summary = " ".join(f"{k}={counts[k]}" for k in ("shipped", "ci_failed", "stalled", "killed"))
    how = f"stopped by signal {received[0]}" if received else "finished"
    notify(app, orch.progress, "run-finished", f"run {how}: {summary}", counts=dict(counts))
    orch.progress.events.emit("run-finished", how=how, counts=dict(counts))  # the last one


def _broken_backends(store: Store, orch: Orchestrator) -> list[str]:
    """One line per open circuit (the backend's own words) when work was left undone because
    of a broken backend: a gap it failed, or one no arm could take; else none."""
    circuits = store.circuits()
    if not circuits:
        return []
    from pytest_chump.core.model import CIRCUIT_CAUSES

    shipped = store.shipped_ids()
    mine = store.dispatches("owner = ? AND started_at >= ?", (orch.owner, orch.started_at))
    failed = {r.gap_id for r in mine if r.cause in CIRCUIT_CAUSES} - shipped
    if not orch.blocked and not failed:
        return []
    return [printable(f"{arm}: {c.message}") for arm, c in circuits.items()]


@contextmanager
def _signals(orch: Orchestrator) -> Iterator[list[int]]:
    """SIGINT/SIGTERM/SIGHUP stop the orchestrator gracefully — its agents stopped and recorded,
    never left unsupervised (the signal numbers are collected); SIGUSR1 nudges it to re-read
    the backlog."""
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        orch.stop(f"interrupted by {signal.Signals(signum).name}")

    def on_nudge(signum: int, frame: object) -> None:
        orch.nudge()

    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # a closed terminal stops us too
    previous = {s: signal.signal(s, handler) for s in stops}
    previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, on_nudge)
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
