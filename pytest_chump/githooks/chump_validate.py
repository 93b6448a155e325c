"""The ``chump-validate`` hook (pre-commit and pre-push stages): a bad backlog blocks the push.

It runs exactly what ``chump validate`` runs, so the hook and the command never disagree;
file names pre-commit may pass are accepted and ignored (the backlog is what is checked).
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_chump import cli
from pytest_chump.githooks import guard


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="chump-validate", description="Validate the chump backlog.")
    parser.add_argument("--backlog", metavar="PATH", help="backlog file (default: the setting)")
    parser.add_argument("--repo-root", metavar="PATH", help="repository (default: git top level)")
    parser.add_argument("files", nargs="*", help="ignored (file names pre-commit may pass)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the backlog; 0 when valid (or when the hooks must not act), 2 otherwise."""
    started = guard.begin(build_parser(), argv, lenient_config=True)
    if isinstance(started, int):
        return started
    args, root = started
    extra = ["--backlog", args.backlog] if args.backlog else []
    return cli.main(["validate", "--repo-root", str(root), *extra])


if __name__ == "__main__":
    raise SystemExit(main())
