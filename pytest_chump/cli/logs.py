"""``chump logs ID [-f] [--tail N] [--stderr] [--raw]``: an agent's log, readable.

``ID`` is a gap id (its latest dispatch) or a dispatch number. claude and codex JSON streams
are rendered one short line per event (assistant text, tool calls, results, errors; see
``agents.render``); ``--raw`` prints the lines as written (still escaped for the terminal).
``-f`` follows the log until the dispatch ends. Read-only.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import threading
from collections import deque
from pathlib import Path

from pytest_chump.agents.logfiles import follow, stderr_log
from pytest_chump.agents.render import log_lines, shown
from pytest_chump.cli.retry import safe_gap_id
from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.errors import UsageError
from pytest_chump.core.redact import known_secrets
from pytest_chump.loop.app import App
from pytest_chump.state.liveness import group_alive
from pytest_chump.state.rows import DispatchRow
from pytest_chump.state.store import Store

FOLLOW_CHECK = 0.5  # seconds between looks at whether a followed dispatch has ended


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("logs", help="an agent's log, its JSON stream made readable")
    parser.add_argument(
        "id",
        metavar="ID",
        type=safe_gap_id,
        help="a gap id (its latest dispatch) or a dispatch number",
    )
    parser.add_argument("-f", "--follow", action="store_true", help="follow until it ends")
    parser.add_argument(
        "--tail", type=_count, default=40, metavar="N", help="last N lines (0: all)"
    )
    parser.add_argument("--stderr", action="store_true", help="the agent's stderr log instead")
    parser.add_argument("--raw", action="store_true", help="lines as written, not rendered")
    add_setting_flags(parser, names=())
    parser.set_defaults(run=run)


def _count(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number (0: all)")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from pytest_chump.observe.snapshot import reading

    app = App.create(setting_flags(args))
    with reading(app.settings.repo_root) as store:  # read-only: never migrates or moves it
        if store is None:
            raise UsageError(f"{args.id}: no dispatches yet (no .chump/chump.db)")
        row = _dispatch(store, args.id)
    if row is None or not row.log_path:
        raise UsageError(f"{args.id}: no such dispatch (see `chump status`)")
    log = Path(row.log_path)
    path = stderr_log(log) if args.stderr else log
    secrets = known_secrets(app.settings.configured_secrets())
    kept: deque[str] = deque(maxlen=args.tail if args.tail > 0 else None)
    try:
        upto = path.stat().st_size  # shown now; following goes on from exactly here
    except OSError:
        upto = 0
    for line in log_lines(path, row.pid if not args.stderr else None, upto):
        text = shown(line, args.raw, secrets)
        if text is not None:
            kept.append(text)
    print("\n".join(kept), flush=True)
    if args.follow:
        _follow(app, row, path, args.raw, secrets, upto)
    return 0


def _dispatch(store: Store, ident: str) -> DispatchRow | None:
    if ident.isdigit():
        return store.dispatch(int(ident))
    rows = store.dispatches("gap_id = ?", (ident,), order="id DESC", limit=1)
    return rows[0] if rows else None


def _follow(
    app: App, row: DispatchRow, path: Path, raw: bool, secrets: list[str], start: int
) -> None:
    """Print what the agent writes until its dispatch ended and its output is drained."""
    ended = threading.Event()

    def watch() -> None:
        from pytest_chump.observe.snapshot import reading

        while not ended.wait(FOLLOW_CHECK):
            with reading(app.settings.repo_root) as store:
                now = store.dispatch(row.id) if store is not None else None
            over = now is None or now.outcome is not None
            if over or not group_alive(now.pid if now else None, now.pid_start if now else ""):
                ended.set()

    threading.Thread(target=watch, name="chump-logs-watch", daemon=True).start()

    def emit(raw_line: bytes) -> None:
        text = shown(raw_line.decode("utf-8", errors="replace"), raw, secrets)
        if text is not None:
            print(text, flush=True)

    try:
        reader = io.FileIO(path, "r")
        reader.seek(min(start, reader.seek(0, os.SEEK_END)))  # where the tail shown ended
    except OSError:
        return
    follow(reader, path, ended, emit)
    sys.stdout.flush()
