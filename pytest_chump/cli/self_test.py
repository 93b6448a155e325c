"""``chump self-test``: the synthetic run of the real orchestrator core (as ``pytest
--chump-self-test``); exit 0 when it PASSED, 1 when it FAILED."""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_chump.core.config_values import integer


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("self-test", help="run the orchestrator over the synthetic backlog")
    parser.add_argument("--max-parallel", type=integer(1), default=2, metavar="N")
    parser.add_argument("--backlog", metavar="PATH", help="another backlog to run it on")
    parser.add_argument(
        "--real",
        action="store_true",
        help="use a temporary git repository, real worktrees, agent processes, git provider",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.real:
        from pytest_chump.selftest import real as selftest
    else:
        from pytest_chump.selftest import inprocess as selftest  # type: ignore[no-redef]
    report = selftest.run(Path(args.backlog) if args.backlog else None, args.max_parallel)
    print("\n".join(report.lines()))
    return 0 if report.passed else 1
