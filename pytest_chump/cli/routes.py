"""``chump routes``: what the router has learned, per arm: successes, failures, posterior mean.

Read-only: it never creates ``.chump/``. With ``--gap`` it shows that gap's candidate arms,
with the same stats (and back-off) the router uses when it dispatches the gap. ``--json``
prints one object (``core/schemas/routes.schema.json``): those arms and the routing table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.errors import UsageError
from pytest_chump.core.model import EFFORTS, PRIORITIES, Gap
from pytest_chump.core.records import Arm, ArmStats
from pytest_chump.core.run import display_path
from pytest_chump.loop.app import App

if TYPE_CHECKING:
    import sqlite3

    from pytest_chump.learn.routing_table import RoutingTable

HEADER = ("arm", "successes", "failures", "posterior mean")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("routes", help="show each routing arm's outcomes and posterior mean")
    add_setting_flags(parser, names=("backlog",))
    parser.add_argument("--gap", metavar="ID", help="only the candidate arms of this gap")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object: arms, statistics, routing table"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    app, gap, conn = history(args)
    if conn is None and gap is None and not args.json:
        return 0
    try:
        arms, stats = _rows(app, conn, gap)
    finally:
        if conn is not None:
            conn.close()
    if args.json:
        from pytest_chump.learn.routing import load_table

        found = as_json(load_table(app.settings), gap, conn is not None, arms, stats)
        print(json.dumps(found, sort_keys=True))
        return 0
    print("\n".join(table(arms, stats)) if arms else "no routing outcomes recorded yet")
    return 0


def _rows(
    app: App, conn: sqlite3.Connection | None, gap: Gap | None
) -> tuple[list[Arm], dict[Arm, ArmStats]]:
    from pytest_chump.learn import routing

    if gap is None:
        stats = routing.overall_stats(conn) if conn is not None else {}
        return list(stats), stats
    arms = routing.candidates(routing.load_table(app.settings), gap)
    return arms, routing.arm_stats(conn, gap, arms) if conn is not None else {}


def history(args: argparse.Namespace) -> tuple[App, Gap | None, sqlite3.Connection | None]:
    """What ``routes`` and ``lessons`` read: settings, the ``--gap`` asked about, and the
    dispatch history opened read-only (None, with a note printed, when there is none yet: on
    stderr with ``--json``, whose output is the JSON only)."""
    from pytest_chump.learn.lessons import open_history

    app = App.create(setting_flags(args))
    gap = find_gap(app, args.gap) if args.gap else None
    conn = open_history(app.settings.state_dir)
    if conn is None:
        print(no_history_note(app), file=sys.stderr if args.json else sys.stdout)
    return app, gap, conn


def find_gap(app: App, gap_id: str) -> Gap:
    """The backlog gap ``gap_id``; an unknown id is a usage error."""
    backlog = app.load_backlog()
    gap = backlog.by_id().get(gap_id)
    if gap is None:
        raise UsageError(f"--gap {gap_id}: no such gap in {display_path(backlog.path)}")
    return gap


def no_history_note(app: App) -> str:
    from pytest_chump.state.database import DB_NAME

    path = display_path(app.settings.state_dir / DB_NAME)
    return f"note: no dispatch history yet ({path} does not exist)"


def as_json(
    table: RoutingTable,
    gap: Gap | None,
    history: bool,
    arms: Sequence[Arm],
    stats: Mapping[Arm, ArmStats],
) -> dict[str, object]:
    """``chump routes --json``: the arms shown with their outcomes and posterior mean, and
    the routing table they come from (with ``--gap``, which of its rules gave the arms)."""
    from pytest_chump.learn.routing import posterior_mean

    rule = None
    if gap is not None:
        rule = next((i for i, r in enumerate(table.rules) if r.matches(gap)), None)
    shown = []
    for arm in arms:
        s = stats.get(arm, ArmStats())
        counts = {"successes": s.successes, "failures": s.failures}
        shown.append({**_arm(arm), **counts, "posterior_mean": posterior_mean(s)})
    return {
        "history": history,
        "gap": gap.id if gap is not None else None,
        "rule": rule,
        "arms": shown,
        "rules": [
            {
                "match": {
                    "priority": [p for p in PRIORITIES if p in r.priority],
                    "effort": [e for e in EFFORTS if e in r.effort],
                    "prefix": list(r.prefix),
                },
                "arms": [_arm(a) for a in r.arms],
            }
            for r in table.rules
        ],
        "default": [_arm(a) for a in table.default],
    }


def _arm(arm: Arm) -> dict[str, object]:
    return {"arm": arm.label, "spawner": arm.spawner, "model": arm.model}


def table(arms: Sequence[Arm], stats: Mapping[Arm, ArmStats]) -> list[str]:
    """Aligned rows: arm label, successes, failures, posterior mean (2 decimals)."""
    from pytest_chump.learn.routing import posterior_mean

    cells = [HEADER]
    for arm in arms:
        s = stats.get(arm, ArmStats())
        cells.append((arm.label, str(s.successes), str(s.failures), f"{posterior_mean(s):.2f}"))
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    return [_line(row, widths) for row in cells]


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    cells = [c.rjust(w) for c, w in zip(row, widths, strict=True)]
    cells[0] = row[0].ljust(widths[0])
    return "  ".join(cells).rstrip()
