"""``chump validate``: check the backlog and report every problem, one line each (exit 0 or 2).

``--ref REF`` checks the backlog as committed at REF instead of the work tree's copy.
"""

from __future__ import annotations

import argparse

from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.errors import BacklogError, UsageError
from pytest_chump.loop.app import App, display_path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("validate", help="check the backlog; exit 0 when valid, 2 otherwise")
    add_setting_flags(parser, names=("backlog",))
    parser.add_argument(
        "--ref", metavar="REF", help="check the backlog as committed at REF (e.g. HEAD)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    app = App.create(setting_flags(args))
    if args.ref:
        return validate_at(app, args.ref)
    backlog = app.load_backlog()
    print(f"{display_path(backlog.path)}: ok ({len(backlog.gaps)} gaps)")
    return 0


def validate_at(app: App, ref: str, required: bool = True) -> int:
    """Validate the backlog committed at ``ref``; absent is an error only when ``required``."""
    from pytest_chump.backlog.at_ref import backlog_at

    path = app.settings.backlog_path
    found = backlog_at(app.settings.repo_root, ref, path)
    if found is None:
        if required:
            raise UsageError(f"--ref: {display_path(path)} is not in {ref!r}")
        return 0
    gaps, problems = found
    if problems:
        raise BacklogError(problems)
    print(f"{display_path(path)} at {ref[:12]}: ok ({len(gaps)} gaps)")
    return 0
