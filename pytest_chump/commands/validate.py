"""``chump validate``: check the backlog and report every problem, one line each (exit 0 or 2)."""

from __future__ import annotations

import argparse

from pytest_chump.app import App, display_path
from pytest_chump.commands.common import add_setting_flags, setting_flags


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("validate", help="check the backlog; exit 0 when valid, 2 otherwise")
    add_setting_flags(parser, names=("backlog",))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    app = App.create(setting_flags(args))
    backlog = app.load_backlog()
    print(f"{display_path(backlog.path)}: ok ({len(backlog.gaps)} gaps)")
    return 0
