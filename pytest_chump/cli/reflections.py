"""``chump reflections``: list stored reflections, newest first, as a table or JSON lines.

Answers "what happened to my dispatches, and why" without opening SQLite: filter by gap,
outcome, backend and age. Reading never creates ``.chump/``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import datetime

from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.model import OUTCOMES
from pytest_chump.core.redact import printable
from pytest_chump.loop.app import App
from pytest_chump.reflect.record import exported
from pytest_chump.state.database import DB_NAME
from pytest_chump.state.queries import ReflectionQuery, StoredReflection, reflections

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
ELLIPSIS = "..."
HEADER = (
    "CREATED",
    "GAP",
    "TRY",
    "OUTCOME",
    "BACKEND",
    "DURATION",
    "PR",
    "CAUSE",
    "DIRECTIVE",
)
SINCE_HELP = (
    "only reflections since WHEN: an ISO date/datetime (local time unless it has an offset) "
    "or a duration ago like 90m, 2h, 7d, 1w"
)


def parse_since(text: str, now: float) -> float:
    """Epoch seconds for ``--since``: ISO date/datetime, or a duration (``2h``) before ``now``."""
    value = text.strip()
    match = _DURATION.fullmatch(value)
    if match:
        return now - float(match.group(1)) * UNITS[match.group(2).lower()]
    try:
        return datetime.fromisoformat(value).timestamp()  # naive = local time
    except ValueError:
        raise ValueError(
            f"{text!r}: expected an ISO date or datetime (2024-05-01, 2024-05-01T09:30) "
            "or a duration like 2h or 7d"
        ) from None


def since_argument(text: str) -> float:
    try:
        return parse_since(text, time.time())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive whole number")
    return int(text)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("reflections", help="list stored reflections, newest first")
    add_setting_flags(parser, names=())
    parser.add_argument("--gap", metavar="ID", help="only this gap")
    parser.add_argument("--outcome", choices=OUTCOMES, help="only this outcome")
    parser.add_argument(
        "--backend", metavar="NAME", help="only this backend (NAME also matches NAME:<model>)"
    )
    parser.add_argument("--since", metavar="WHEN", type=since_argument, help=SINCE_HELP)
    parser.add_argument(
        "--limit", metavar="N", type=_positive, default=20, help="at most N rows (default 20)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = App.create(setting_flags(args)).settings
    path = settings.state_dir / DB_NAME
    query = ReflectionQuery(args.gap, args.outcome, args.backend, args.since, args.limit)
    rows = reflections(path, query)
    if args.gap:  # one gap's attempts read best in the order they were made
        rows = rows[::-1]
    if not rows:
        why = "no reflections match" if path.is_file() else f"no reflections yet ({path} absent)"
        print(f"note: {why}", file=sys.stderr)
    elif args.json:
        print("\n".join(json_lines(rows)))
    else:
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
        print("\n".join(printable(line) for line in table(rows, width)))
    return 0


def json_lines(rows: Sequence[StoredReflection]) -> list[str]:
    """One JSON object per row, shaped like the jsonl sink's lines."""
    return [
        json.dumps(
            {**exported(row.reflection, row.created_at), "directive": row.directive},
            sort_keys=True,
        )
        for row in rows
    ]


def table(rows: Sequence[StoredReflection], width: int | None = None) -> list[str]:
    """Aligned columns; each line is cut to ``width`` (a terminal's) when given."""
    cells = [HEADER, *(_cells(row) for row in rows)]
    sizes = [max(len(line[i]) for line in cells) for i in range(len(HEADER) - 1)]
    lines = ("  ".join([*map(str.ljust, line[:-1], sizes), line[-1]]) for line in cells)
    return [_cut(line.rstrip(), width) for line in lines]


def _cells(row: StoredReflection) -> tuple[str, ...]:
    r = row.reflection
    return (
        time.strftime("%Y-%m-%d %H:%M", time.localtime(row.created_at)),
        r.gap_id,
        str(r.attempt),
        r.outcome,
        r.backend or "-",
        duration(r.duration_s),
        f"#{r.pr_number}" if r.pr_number is not None else "-",
        r.cause or "-",
        row.directive,
    )


def duration(seconds: int) -> str:
    """``45s``, ``4m05s``, ``2h07m``."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _cut(line: str, width: int | None) -> str:
    if width is None or len(line) <= width:
        return line
    return line[: max(width - len(ELLIPSIS), 0)] + ELLIPSIS
