"""``chump ready [--explain] [ID ...]``: which gaps a round would start, and why the others not.

Without ``--explain``: the ready gaps, in the order a round starts them. With it (or with
ids): one line per open gap (or per id given) saying ``ready`` or why not — quarantined,
status, priority, effort, kind, in flight, shipped, or blocked by a dependency and its state.
"""

from __future__ import annotations

import argparse
import json

from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.model import Gap
from pytest_chump.core.records import Backlog
from pytest_chump.core.redact import printable
from pytest_chump.loop.app import App
from pytest_chump.loop.plan import Occupancy, existing_store, occupancy
from pytest_chump.pick.explain import Context, why_not


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("ready", help="list ready gaps; --explain says why others are not")
    add_setting_flags(parser, names=("backlog", "backlog_source", "kind", "picker_order"))
    parser.add_argument("ids", nargs="*", metavar="ID", help="explain these gaps only")
    parser.add_argument("--explain", action="store_true", help="say why each open gap is not")
    parser.add_argument("--json", action="store_true", help="print one JSON object per gap")
    parser.set_defaults(run=run)


def context(app: App, backlog: Backlog, seen: Occupancy) -> Context:
    """What readiness depends on: the backlog, the store, the kind filter."""
    quarantined: dict[str, str] = {}
    for problem in backlog.problems:
        if problem.gap_id is not None:
            quarantined.setdefault(problem.gap_id, f"{problem.field}: {problem.message}")
    last = {}
    for gap_id, row in seen.last.items():
        pr = f" (PR #{row.pr_number})" if row.pr_number is not None else ""
        last[gap_id] = f"{row.outcome}{pr}"
    return Context(
        gaps=backlog.by_id(),
        done=backlog.done_ids() | seen.shipped,
        busy=seen.busy,
        shipped=seen.shipped,
        quarantined=quarantined,
        last=last,
        kind=app.settings.kind,
    )


def run(args: argparse.Namespace) -> int:
    app = App.create(setting_flags(args))
    backlog = app.load_backlog(strict=False)
    store = existing_store(app.settings.repo_root)
    try:
        seen = occupancy(store)
    finally:
        if store is not None:
            store.close()
    ctx = context(app, backlog, seen)
    order = app.pick(backlog, len(backlog.gaps), seen.busy, seen.shipped)
    rank = {gap.id: i for i, gap in enumerate(order)}
    if args.ids:
        known = backlog.by_id()
        rows = [(known.get(i, Gap(i)), None if i in known else "unknown id") for i in args.ids]
    elif args.explain or args.json:
        rows = [(g, None) for g in backlog.gaps if g.status == "open" or g.id in ctx.quarantined]
    else:
        rows = [(g, None) for g in order]
    for gap, unknown in rows:
        reason = unknown or why_not(gap, ctx)
        _print(gap, reason, rank.get(gap.id), args.json)
    return 0


def _print(gap: Gap, reason: str | None, position: int | None, as_json: bool) -> None:
    if as_json:
        record = {"id": gap.id, "ready": reason is None, "reason": reason, "order": position}
        print(json.dumps(record))
        return
    shown = printable(gap.id)
    if reason is not None:
        print(f"{shown}  not ready: {printable(reason)}")
        return
    title = f"  -- {printable(gap.title)}" if gap.title else ""
    print(f"{shown}  ready (prio={gap.priority} effort={gap.effort}){title}")
