"""CLI: the ``chump`` console script, one module per sub-command; user mistakes become one
line and exit 2. May import: every stage up to selftest (not githooks).

Each sub-command module adds its own parser and runs with an :class:`argparse.Namespace`.
Any :class:`~pytest_chump.core.errors.ChumpError` is printed as ``chump: error: <line>`` per
problem line, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import NoReturn

from pytest_chump import __version__
from pytest_chump.core.errors import EXIT_USAGE, ChumpError, UsageError
from pytest_chump.core.run import HOOK_GIT_VARS

COMMANDS: dict[str, str] = {
    "dispatch": "pytest_chump.cli.dispatch",
    "validate": "pytest_chump.cli.validate",
    "ready": "pytest_chump.cli.ready",
    "sync": "pytest_chump.cli.sync",
    "status": "pytest_chump.cli.status",
    "cleanup": "pytest_chump.cli.cleanup",
    "retry": "pytest_chump.cli.retry",
    "costs": "pytest_chump.cli.costs",
    "logs": "pytest_chump.cli.logs",
    "serve": "pytest_chump.cli.serve",
    "simulate": "pytest_chump.cli.simulate",
    "reflections": "pytest_chump.cli.reflections",
    "routes": "pytest_chump.cli.routes",
    "lessons": "pytest_chump.cli.lessons",
    "report": "pytest_chump.cli.report",
    "self-test": "pytest_chump.cli.self_test",
    "install-hooks": "pytest_chump.githooks.install",
}
"""Sub-command -> the module with its ``add_parser(sub)`` (loaded by name, like built-in
plugins: ``install-hooks`` belongs to the git hooks, which sit after the CLI in the flow)."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (raised, then printed by ``main``)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def build_parser() -> Parser:
    parser = Parser(prog="chump", description="Dispatch AI coding agents over a YAML backlog.")
    parser.add_argument("--version", action="version", version=f"chump {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``chump`` with ``argv`` (default: sys.argv[1:]) and return the exit status."""
    for name in HOOK_GIT_VARS:  # run from a git hook: act on the repo we are pointed at
        os.environ.pop(name, None)
    try:
        args = build_parser().parse_args(argv)
        status: int = args.run(args)
        return status
    except ChumpError as exc:
        for line in exc.messages():
            print(line, file=sys.stderr)
        return exc.exit_code
    except sqlite3.Error as exc:  # anything the store did not already say in one line
        print(f"chump: error: state database: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `chump ... | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
