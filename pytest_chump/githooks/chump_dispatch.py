"""The ``chump-dispatch`` hook (post-merge stage): a merge or pull triggers a dispatch round.

It never makes the terminal wait: when an exclusive orchestrator already runs for the
repository it is nudged to re-read the backlog, otherwise one is started detached (its own
session, output in ``.chump/logs/orchestrator.log``). The orchestrator's lock settles races
between hooks that fire at the same time: the loser nudges the winner and exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from pytest_chump import cli
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.run import clean_env
from pytest_chump.githooks import guard
from pytest_chump.state.orchestrator_lock import NUDGE, nudge, running_pid

LOG = Path(".chump", "logs", "orchestrator.log")
SQUASH_VAR = "PRE_COMMIT_IS_SQUASH_MERGE"


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="chump-dispatch", description="Start or nudge the orchestrator.")
    parser.add_argument("squash", nargs="?", help="git's post-merge flag: 1 after a squash merge")
    parser.add_argument("--repo-root", metavar="PATH", help="repository (default: git top level)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Nudge the running orchestrator or start one; return at once with one line printed."""
    started = guard.begin(build_parser(), argv)
    if isinstance(started, int):
        return started
    args, root = started
    try:
        print(trigger(root, squash="1" in (args.squash, os.environ.get(SQUASH_VAR))))
    except ChumpError as exc:
        return guard.report(exc)
    return 0


def trigger(root: Path, squash: bool = False) -> str:
    """Nudge or start the repository's orchestrator; the line saying which happened."""
    note = " (squash merge)" if squash else ""
    pid = running_pid(root / ".chump")
    if pid is not None and nudge(pid):
        return f"chump: nudged the running orchestrator (pid {pid}) to re-read the backlog{note}"
    pid = start(root, "squash merge" if squash else "merge")
    return f"chump: started an orchestrator (pid {pid}); log: {shown(root / LOG)}{note}"


def start(root: Path, after: str) -> int:
    """Start ``chump dispatch --no-dry-run --watch --exclusive`` detached; return its pid."""
    log = root / LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pytest_chump.cli", "dispatch", "--no-dry-run", "--watch"]
    argv += ["--exclusive", "--repo-root", str(root)]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with log.open("ab") as out:
        out.write(f"--- {stamp} chump-dispatch after a {after}: {' '.join(argv)}\n".encode())
        out.flush()
        with nudges_ignored():
            return detach(argv, root, out)


@contextlib.contextmanager
def nudges_ignored() -> Iterator[None]:
    """Start children with SIGUSR1 ignored (an ignored signal survives exec).

    The new orchestrator writes its pid file before it installs its nudge handler; a hook
    nudging it in between would otherwise kill it. It reads the backlog after that anyway.
    """
    try:
        previous = signal.signal(NUDGE, signal.SIG_IGN)
    except ValueError:  # not the main thread: cannot change dispositions; start as is
        yield
        return
    try:
        yield
    finally:
        signal.signal(NUDGE, previous)


def detach(argv: list[str], cwd: Path, out: BinaryIO) -> int:
    """Run ``argv`` in a new session writing to ``out``; nothing of ours is inherited."""
    try:
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            env=clean_env(PYTHONUNBUFFERED="1"),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise ChumpError(f"cannot start the orchestrator: {exc.strerror or exc}") from None
    return child.pid


def shown(path: Path) -> str:
    """``path`` relative to the cwd when below it (the usual case in a hook), else absolute."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    raise SystemExit(main())
