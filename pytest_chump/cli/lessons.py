"""``chump lessons``: the counted facts prompts are given about earlier dispatches, read-only.

Without ``--gap``: one line per (domain, effort, backend). With it: what a prompt for that
gap would include, for each spawner its routing candidates name. ``--json`` prints one
object (``core/schemas/lessons.schema.json``): each line with the counts it is made of.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import TYPE_CHECKING

from pytest_chump.cli.routes import history
from pytest_chump.cli.setting_flags import add_setting_flags
from pytest_chump.core.model import Gap
from pytest_chump.loop.app import App

if TYPE_CHECKING:
    import sqlite3

    from pytest_chump.learn.lessons import Lesson


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("lessons", help="show lessons learned from earlier dispatches")
    add_setting_flags(parser, names=("backlog",))
    parser.add_argument("--gap", metavar="ID", help="only the lessons a prompt for this gap gets")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object: each lesson and its counts"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pytest_chump.learn.lessons import grouped

    app, gap, conn = history(args)
    found: list[Lesson] = []
    if conn is not None:
        try:
            found = grouped(conn) if gap is None else _for_gap(app, conn, gap)
        finally:
            conn.close()
    elif not args.json:
        return 0
    if args.json:
        lessons = [as_json(lesson) for lesson in found]
        data = {"history": conn is not None, "gap": gap.id if gap else None, "lessons": lessons}
        print(json.dumps(data, sort_keys=True))
        return 0
    print("\n".join(lesson.sentence() for lesson in found) if found else "no lessons yet")
    return 0


def _for_gap(app: App, conn: sqlite3.Connection, gap: Gap) -> list[Lesson]:
    from pytest_chump.learn.lessons import lessons_of
    from pytest_chump.learn.routing import candidates, load_table

    spawners = dict.fromkeys(arm.spawner for arm in candidates(load_table(app.settings), gap))
    return [lesson for name in spawners for lesson in lessons_of(conn, gap, name)]


def as_json(lesson: Lesson) -> dict[str, object]:
    """One lesson for ``chump lessons --json``: its sentence and the counts behind it."""
    t = lesson.tally
    causes = sorted(t.causes.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "text": lesson.sentence(),
        "domain": lesson.domain,
        "effort": lesson.effort or None,
        "backend": lesson.backend,
        "dispatches": t.dispatches,
        "shipped": t.shipped,
        "ship_rate": t.shipped / t.dispatches,
        "median_minutes": statistics.median(t.minutes) if t.minutes else None,
        "median_usd": statistics.median(t.costs) if t.costs else None,
        "failures": [{"cause": cause, "count": n} for cause, n in causes],
    }
