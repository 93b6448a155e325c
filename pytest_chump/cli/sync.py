"""``chump sync [--dry-run]``: write what shipped into the backlog, for teams that edit it by hand.

Every gap a dispatch shipped (per the store) that the backlog does not say is done gets
``status: done``, ``closed_date`` (the day it shipped) and ``closed_pr`` (when there was a
pull request), edited in place in the file that holds it; comments and layout are kept, and a
file is only written when reading it back shows exactly that change. Works for backlog files
and directories; the ``github`` source closes issues through ``Closes #N`` instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pytest_chump.backlog import check_files
from pytest_chump.backlog.edit import Done, mark_done
from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.errors import UsageError
from pytest_chump.core.model import Gap
from pytest_chump.core.redact import printable
from pytest_chump.core.run import display_path
from pytest_chump.loop.app import App
from pytest_chump.loop.plan import existing_store


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("sync", help="mark shipped gaps done in the backlog file(s)")
    add_setting_flags(parser, names=("backlog", "backlog_source"))
    parser.add_argument("--dry-run", action="store_true", help="say what would change only")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    app = App.create(setting_flags(args))
    if app.settings.backlog_source != "yaml":
        raise UsageError(
            f"chump sync edits YAML backlogs; the {app.settings.backlog_source!r} source "
            "learns what shipped from the work itself (e.g. `Closes #N`)"
        )
    store = existing_store(app.settings.repo_root)
    if store is None:
        print("nothing to sync: no dispatch has shipped yet")
        return 0
    with store:
        shipped = store.dispatches("outcome = 'shipped'", order="id")
    backlog = app.load_backlog(strict=False)
    known = backlog.by_id()
    todo = {row.gap_id: row for row in shipped if row.gap_id in known}  # the last one wins
    todo = {i: row for i, row in todo.items() if known[i].status != "done"}
    if not todo:
        print("nothing to sync: every shipped gap is done in the backlog")
        return 0
    failed = 0
    for gap_id, row in todo.items():
        when = datetime.fromtimestamp(row.ended_at or row.started_at, UTC).date().isoformat()
        done = Done(when, row.pr_number)
        path = gap_file(app, known[gap_id])
        problem = _mark(path, gap_id, done, args.dry_run)
        pr = f" (PR #{row.pr_number})" if row.pr_number is not None else ""
        where = printable(display_path(path))
        if problem:
            failed += 1
            print(f"could not mark {gap_id} done in {where}: {problem}", file=sys.stderr)
        else:
            verb = "would mark" if args.dry_run else "marked"
            print(f"{verb} {gap_id} done{pr} in {where}")
    return 1 if failed else 0


def gap_file(app: App, gap: Gap) -> Path:
    """The file that holds ``gap``: its origin in a backlog directory, else the backlog file."""
    backlog = app.settings.backlog_path
    if backlog.is_dir() and gap.source:
        return Path(gap.source)
    return backlog


def _mark(path: Path, gap_id: str, done: Done, dry_run: bool) -> str:
    """Mark ``gap_id`` done in ``path``; "" when done, else why not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc}"
    bom = "\ufeff" if data.startswith(b"\xef\xbb\xbf") else ""
    text = data.decode("utf-8-sig", errors="replace")
    gap = next((g for g in check_files([("f", data)]).gaps if g.id == gap_id), None)
    if gap is None:
        return "the gap is not in this file"
    edited = mark_done(text, gap, done)
    if edited is None:
        return "its entry has a layout this edit does not handle safely; mark it by hand"
    if not dry_run:
        _write(path, bom + edited)
    return ""


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777
    fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(scratch, mode)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
