"""``chump retry ID [ID ...]``: let gaps that need a human be dispatched again.

A gap is held (``needs-human``) after its last retry failed. Once a human looked (fixed the
tests, the base, the credentials), ``chump retry`` releases it: its next attempt is scheduled
with what failed last time and fresh retry counters, and the next ``chump dispatch`` (or a
running orchestrator's next refill) starts it.
"""

from __future__ import annotations

import argparse
import time

from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.errors import UsageError
from pytest_chump.core.model import id_problem
from pytest_chump.loop.app import App
from pytest_chump.state.database import DB_NAME
from pytest_chump.state.locks import STATE_DIR
from pytest_chump.state.rows import HoldRow, RetryRow
from pytest_chump.state.store import Store


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("retry", help="let gaps that need a human be dispatched again")
    parser.add_argument(
        "ids", nargs="+", metavar="ID", type=safe_gap_id, help="gap ids shown as needs-human"
    )
    add_setting_flags(parser, names=())
    parser.set_defaults(run=run)


def safe_gap_id(text: str) -> str:
    """An argument that must be a safe gap id (it becomes a path and a ref); else one line."""
    problem = id_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"gap id {problem}")
    return text


def run(args: argparse.Namespace) -> int:
    app = App.create(setting_flags(args))
    if not (app.settings.repo_root / STATE_DIR / DB_NAME).exists():
        raise UsageError(f"{args.ids[0]}: no gap needs a human here (no .chump/chump.db)")
    with Store.for_repo(app.settings.repo_root) as store:
        held = store.holds()
        missing = [g for g in args.ids if g not in held]
        if missing:
            raise UsageError(f"{missing[0]}: not waiting for a human (see `chump status`)")
        for gap_id in args.ids:

            def next_attempt(hold: HoldRow) -> RetryRow:
                last = store.dispatch(hold.dispatch_id) if hold.dispatch_id is not None else None
                attempt = (last.attempt + 1) if last is not None else 1
                now = time.time()
                return RetryRow(
                    hold.gap_id,
                    "manual",
                    hold.cause,
                    now,
                    hold.dispatch_id,
                    attempt,
                    0,
                    0,
                    hold.feedback,
                    now,
                )

            retry = store.retry_held(gap_id, next_attempt)
            if retry is not None:  # None: released by another process meanwhile
                print(f"{gap_id}: released; attempt {retry.attempt} starts with the next dispatch")
    return 0
