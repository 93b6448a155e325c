"""The ``chump-validate`` hook (pre-commit and pre-push stages): a bad backlog blocks the push.

It runs exactly what ``chump validate`` runs, so the hook and the command never disagree.
On pre-push it checks the backlog of each commit being pushed (pre-commit names it in
``PRE_COMMIT_TO_REF``; plain git writes the refs to the hook's stdin, read with
``--pre-push``), not the work tree's copy, and refuses only problems the remote's backlog did
not have (``chump validate --new-since``): a legacy backlog never blocks every push. On
pre-commit, the staged copy pre-commit leaves in the work tree. File names pre-commit may
pass are accepted and ignored.
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
FROM_REF_VAR = "PRE_COMMIT_FROM_REF"


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


def pushed(args: argparse.Namespace) -> list[tuple[str, str | None]] | None:
    """(commit pushed, what the remote had: the baseline or None) per pushed ref, or None for
    the work tree's copy (pre-commit stage)."""
    if os.environ.get(TO_REF_VAR):
        return [(os.environ[TO_REF_VAR], os.environ.get(FROM_REF_VAR) or None)]
    if not args.pre_push:
        return None
    commits: list[tuple[str, str | None]] = []
    for line in sys.stdin:  # <local ref> <local sha> <remote ref> <remote sha>
        fields = line.split()
        if len(fields) == 4 and fields[1].strip("0"):  # all zeros: a branch being deleted
            commits.append((fields[1], fields[3] if fields[3].strip("0") else None))
    return commits


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the backlog; 0 when valid (or when the hooks must not act), 2 otherwise."""
    started = guard.begin(build_parser(), argv, lenient_config=True)
    if isinstance(started, int):
        return started
    args, root = started
    extra = ["--backlog", args.backlog] if args.backlog else []
    commits = pushed(args)
    if commits is None:  # pre-commit: what this commit would add to the problems of HEAD
        since = ["--new-since", "HEAD"] if _known(root, "HEAD") else []
        return cli.main(["validate", "--repo-root", str(root), *extra, *since])
    return max((_at(root, commit, before, args.backlog) for commit, before in commits), default=0)


def _at(root: Path, commit: str, before: str | None, backlog: str | None) -> int:
    """Refuse the push when ``commit``'s backlog has a problem the remote's did not have.

    The baseline is what the remote had (``before``); for a new branch, or a remote commit
    not known here, the base ref (``origin/main``). A commit without a backlog is fine.
    """
    from pytest_chump.backlog.at_ref import backlog_at
    from pytest_chump.cli.validate import check
    from pytest_chump.core.errors import BacklogError, ChumpError
    from pytest_chump.core.remote_refs import resolve
    from pytest_chump.loop.app import App

    try:
        app = App.create({"repo_root": str(root), "backlog": backlog})
        settings = app.settings
        aliases = settings.status_aliases
        if backlog_at(settings.repo_root, commit, settings.backlog_path, aliases) is None:
            return 0
        if before is None or not _known(root, before):
            before = resolve(root, settings.base_ref) or settings.base_ref  # chump's copy too
        verdict = check(app, ref=commit, new_since=before)
        if verdict.problems:
            raise BacklogError(verdict.problems)
        print(verdict.ok_line())
        return 0
    except ChumpError as exc:
        return guard.report(exc)


def _known(root: Path, commit: str) -> bool:
    from pytest_chump.core.run import run

    verify = ["git", "cat-file", "-e", f"{commit}^{{commit}}"]
    return run(verify, cwd=root, check=False).returncode == 0


if __name__ == "__main__":
    raise SystemExit(main())
