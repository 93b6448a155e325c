"""``chump routes``: what the router has learned, per arm: successes, failures, posterior mean.

Read-only: it never creates ``.chump/``. With ``--gap`` it shows that gap's candidate arms,
with the same stats (and back-off) the router uses when it dispatches the gap.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.errors import UsageError
from pytest_chump.core.model import Gap
from pytest_chump.core.records import Arm, ArmStats
from pytest_chump.core.run import display_path
from pytest_chump.loop.app import App

if TYPE_CHECKING:
    import sqlite3

HEADER = ("arm", "successes", "failures", "posterior mean")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("routes", help="show each routing arm's outcomes and posterior mean")
    add_setting_flags(parser, names=("backlog",))
    parser.add_argument("--gap", metavar="ID", help="only the candidate arms of this gap")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    app, gap, conn = history(args)
    if conn is None and gap is None:
        return 0
    try:
        arms, stats = _rows(app, conn, gap)
    finally:
        if conn is not None:
            conn.close()
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
    dispatch history opened read-only (None, with a note printed, when there is none yet)."""
    from pytest_chump.learn.lessons import open_history

    app = App.create(setting_flags(args))
    gap = find_gap(app, args.gap) if args.gap else None
    conn = open_history(app.settings.state_dir)
    if conn is None:
        print(no_history_note(app))
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
