"""``chump lessons``: the counted facts prompts are given about earlier dispatches, read-only.

Without ``--gap``: one line per (domain, effort, backend). With it: what a prompt for that
gap would include, for each spawner its routing candidates name.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pytest_chump.cli.routes import history
from pytest_chump.cli.setting_flags import add_setting_flags
from pytest_chump.core.model import Gap
from pytest_chump.loop.app import App

if TYPE_CHECKING:
    import sqlite3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("lessons", help="show lessons learned from earlier dispatches")
    add_setting_flags(parser, names=("backlog",))
    parser.add_argument("--gap", metavar="ID", help="only the lessons a prompt for this gap gets")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pytest_chump.learn.lessons import all_lessons

    app, gap, conn = history(args)
    if conn is None:
        return 0
    try:
        lines = all_lessons(conn) if gap is None else _for_gap(app, conn, gap)
    finally:
        conn.close()
    print("\n".join(lines) if lines else "no lessons yet")
    return 0


def _for_gap(app: App, conn: sqlite3.Connection, gap: Gap) -> list[str]:
    from pytest_chump.learn.lessons import lessons_for
    from pytest_chump.learn.routing import candidates, load_table

    spawners = dict.fromkeys(arm.spawner for arm in candidates(load_table(app.settings), gap))
    return [line for name in spawners for line in lessons_for(conn, gap, name)]
