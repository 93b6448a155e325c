"""``chump report --html PATH [--since WHEN]``: one self-contained HTML page of what the
repository's dispatches did — the timeline per slot, outcomes, cost and ship rate per backend
per day, routing posteriors, the last outcomes. Read-only; works before any dispatch."""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.redact import printable
from pytest_chump.core.run import display_path
from pytest_chump.loop.app import App
from pytest_chump.observe.report import write_report

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
SINCE_HELP = (
    "only dispatches started since WHEN: a duration ago (30m, 12h, 7d, 2w) or an ISO "
    "date/datetime (UTC unless it has an offset); default: all of them"
)


def parse_when(text: str, now: float) -> float:
    """Epoch seconds of ``WHEN``: a duration before ``now``, or an ISO date/datetime (UTC
    when it names no zone)."""
    value = text.strip()
    match = _DURATION.fullmatch(value)
    if match:
        return now - float(match.group(1)) * UNITS[match.group(2).lower()]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r}: expected a duration like 30m, 12h or 7d, or an ISO date or datetime "
            "(2024-05-01, 2024-05-01T09:30, 2024-05-01T09:30+02:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _when(text: str) -> float:
    try:
        return parse_when(text, time.time())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "report", help="write a self-contained HTML report: timeline, outcomes, costs, routing"
    )
    parser.add_argument(
        "--html", metavar="PATH", required=True, type=Path, help="the file to write"
    )
    parser.add_argument("--since", metavar="WHEN", type=_when, default=None, help=SINCE_HELP)
    add_setting_flags(parser, names=())
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = App.create(setting_flags(args)).settings
    data = write_report(args.html, settings.repo_root, settings, args.since or 0.0)
    timeline = data["timeline"]
    assert isinstance(timeline, dict)
    bars = len(timeline["bars"])
    print(printable(f"chump: report of {bars} dispatches written to {display_path(args.html)}"))
    return 0
