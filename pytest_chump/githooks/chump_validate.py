"""The ``chump-validate`` hook (pre-commit and pre-push stages): a bad backlog blocks the push.

It runs exactly what ``chump validate`` runs, so the hook and the command never disagree;
file names pre-commit may pass are accepted and ignored (the backlog is what is checked).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from pytest_chump import cli
from pytest_chump.errors import ChumpError
from pytest_chump.githooks import guard


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="chump-validate", description="Validate the chump backlog.")
    parser.add_argument("--backlog", metavar="PATH", help="backlog file (default: the setting)")
    parser.add_argument("--repo-root", metavar="PATH", help="repository (default: git top level)")
    parser.add_argument("files", nargs="*", help="ignored (file names pre-commit may pass)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the backlog; 0 when valid (or when the hooks must not act), 2 otherwise."""
    guard.forget_hook_git_vars()
    if guard.inside_agent():
        return 0
    try:
        args = build_parser().parse_args(argv)
        root = guard.repo_root(args.repo_root)
    except ChumpError as exc:
        return guard.report(exc)
    reason = None
    with contextlib.suppress(ChumpError):  # a bad configuration is reported by the validation
        reason = guard.disabled_reason(root)
    if reason is not None:
        return guard.say_disabled(reason)
    extra = ["--backlog", args.backlog] if args.backlog else []
    return cli.main(["validate", "--repo-root", str(root), *extra])


if __name__ == "__main__":
    raise SystemExit(main())
