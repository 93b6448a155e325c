"""The ``chump-validate`` hook (pre-commit and pre-push stages): a bad backlog blocks the push.

It runs exactly what ``chump validate`` runs, so the hook and the command never disagree.
On pre-push it checks the backlog of each commit being pushed (pre-commit names it in
``PRE_COMMIT_TO_REF``; plain git writes the refs to the hook's stdin, read with
``--pre-push``), not the work tree's copy; on pre-commit, the staged copy pre-commit leaves
in the work tree. File names pre-commit may pass are accepted and ignored.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_chump import cli
from pytest_chump.githooks import guard

TO_REF_VAR = "PRE_COMMIT_TO_REF"


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="chump-validate", description="Validate the chump backlog.")
    parser.add_argument("--backlog", metavar="PATH", help="backlog file (default: the setting)")
    parser.add_argument("--repo-root", metavar="PATH", help="repository (default: git top level)")
    parser.add_argument(
        "--pre-push",
        action="store_true",
        help="read the pushed refs from stdin, as git gives them to a pre-push hook",
    )
    parser.add_argument("files", nargs="*", help="ignored (file names pre-commit may pass)")
    return parser


def pushed(args: argparse.Namespace) -> list[str] | None:
    """Commits whose backlog to check, or None for the work tree's copy."""
    if os.environ.get(TO_REF_VAR):
        return [os.environ[TO_REF_VAR]]
    if not args.pre_push:
        return None
    commits = []
    for line in sys.stdin:  # <local ref> <local sha> <remote ref> <remote sha>
        fields = line.split()
        if len(fields) == 4 and fields[1].strip("0"):  # all zeros: a branch being deleted
            commits.append(fields[1])
    return commits


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the backlog; 0 when valid (or when the hooks must not act), 2 otherwise."""
    started = guard.begin(build_parser(), argv, lenient_config=True)
    if isinstance(started, int):
        return started
    args, root = started
    extra = ["--backlog", args.backlog] if args.backlog else []
    commits = pushed(args)
    if commits is None:
        return cli.main(["validate", "--repo-root", str(root), *extra])
    return max((_at(root, commit, args.backlog) for commit in commits), default=0)


def _at(root: Path, commit: str, backlog: str | None) -> int:
    from pytest_chump.cli.validate import validate_at
    from pytest_chump.core.errors import ChumpError
    from pytest_chump.loop.app import App

    try:
        app = App.create({"repo_root": str(root), "backlog": backlog})
        return validate_at(app, commit, required=False)  # a commit without a backlog is fine
    except ChumpError as exc:
        return guard.report(exc)


if __name__ == "__main__":
    raise SystemExit(main())
