"""``chump costs [--since WHEN] [--by day|backend|gap] [--json]``: what dispatches cost, as
their agents reported it (USD where the agent says, tokens in / out / cache), summed per day,
backend or gap, with a total. Read-only."""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Sequence

from pytest_chump.cli.reflections import SINCE_HELP, since_argument
from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.redact import printable
from pytest_chump.loop.app import App
from pytest_chump.state.database import DB_NAME
from pytest_chump.state.rows import DispatchRow
from pytest_chump.state.store import Store

COLUMNS = ("dispatches", "usd", "tokens_in", "tokens_out", "tokens_cache")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("costs", help="what dispatches cost, per day, backend or gap")
    parser.add_argument(
        "--since", type=since_argument, default=None, metavar="WHEN", help=SINCE_HELP
    )
    parser.add_argument("--by", choices=("day", "backend", "gap"), default="day")
    parser.add_argument("--json", action="store_true", help="one JSON object per group")
    add_setting_flags(parser, names=())
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = App.create(setting_flags(args)).settings
    path = settings.state_dir / DB_NAME
    rows: list[DispatchRow] = []
    if path.is_file():
        with Store.for_repo(settings.repo_root) as store:
            rows = store.dispatches("ended_at >= ?", (args.since or 0.0,), order="ended_at")
    groups = totals(rows, args.by)
    if args.json:
        for key, sums in groups.items():
            print(json.dumps({args.by: key, **sums}, sort_keys=True))
        return 0
    print(
        f"{args.by.upper():<20} {'DISPATCHES':>10} {'USD':>10} {'IN':>12} {'OUT':>12} {'CACHE':>12}"
    )
    for key, sums in groups.items():
        print(printable(_line(key, sums)))
    return 0


def totals(rows: Sequence[DispatchRow], by: str) -> dict[str, dict[str, float | int | None]]:
    """Sums per group, then ``(total)``; a sum is None when no dispatch of it reported one."""
    groups: dict[str, list[DispatchRow]] = defaultdict(list)
    for row in rows:
        groups[_key(row, by)].append(row)
    result = {key: _sums(members) for key, members in groups.items()}
    result["(total)"] = _sums(list(rows))  # parenthesised: no gap id can collide with it
    return result


def _key(row: DispatchRow, by: str) -> str:
    if by == "backend":
        return row.backend + (f":{row.model}" if row.model else "")
    if by == "gap":
        return row.gap_id
    return time.strftime("%Y-%m-%d", time.gmtime(row.ended_at or row.started_at))


def _sums(rows: Sequence[DispatchRow]) -> dict[str, float | int | None]:
    def total(values: list[float | int | None]) -> float | int | None:
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    return {
        "dispatches": len(rows),
        "usd": total([r.cost_usd for r in rows]),
        "tokens_in": total([r.tokens_in for r in rows]),
        "tokens_out": total([r.tokens_out for r in rows]),
        "tokens_cache": total([r.tokens_cache for r in rows]),
    }


def _line(key: str, sums: dict[str, float | int | None]) -> str:
    usd = "-" if sums["usd"] is None else f"${sums['usd']:.2f}"
    counts = ["-" if sums[k] is None else f"{sums[k]:,}" for k in COLUMNS[2:]]
    return f"{key:<20} {sums['dispatches']:>10} {usd:>10} " + " ".join(f"{c:>12}" for c in counts)
