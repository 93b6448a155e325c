"""``chump validate``: the strict linter. Every problem of the backlog, one line each, exit 2.

``--ref REF`` checks the backlog as committed at REF instead of the work tree's copy;
``--new-since REF`` reports only problems not already present at REF (a legacy backlog does
not block every push, a push that adds a problem does); ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass

from pytest_chump.backlog.at_ref import backlog_at
from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.errors import BacklogError, UsageError
from pytest_chump.core.records import Backlog, Problem
from pytest_chump.core.run import display_path
from pytest_chump.core.run import run as run_command
from pytest_chump.loop.app import App


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("validate", help="check the backlog; exit 0 when valid, 2 otherwise")
    add_setting_flags(parser, names=("backlog", "backlog_source"))
    parser.add_argument(
        "--ref", metavar="REF", help="check the backlog as committed at REF (e.g. HEAD)"
    )
    parser.add_argument(
        "--new-since",
        metavar="REF",
        help="report only problems that the backlog at REF does not have already",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Verdict:
    """What validation found: the backlog, the problems reported, those tolerated as old."""

    shown: str  # the backlog's path as printed (with "at <ref>" when checked at a ref)
    backlog: Backlog
    problems: tuple[Problem, ...]
    known: int = 0  # problems left out because they were present at --new-since already
    since: str = ""

    def ok_line(self) -> str:
        old = f"; {self.known} problems already at {self.since[:12]}" if self.known else ""
        return f"{self.shown}: ok ({len(self.backlog.gaps)} gaps{old})"

    def as_dict(self) -> dict[str, object]:
        return {
            "backlog": self.shown,
            "ok": not self.problems,
            "fatal": False,
            "gaps": len(self.backlog.gaps),
            "quarantined": sorted({p.gap_id for p in self.problems if p.gap_id is not None}),
            "problems": [p.as_dict() for p in self.problems],
            "known_problems": self.known,
            "new_since": self.since or None,
        }


def run(args: argparse.Namespace) -> int:
    app = App.create(setting_flags(args))
    try:
        verdict = check(app, ref=args.ref, new_since=args.new_since)
    except BacklogError as exc:
        if not args.json:
            raise
        print(json.dumps(unreadable(app, exc, args.ref, args.new_since), indent=2))
        return exc.exit_code
    if args.json:
        print(json.dumps(verdict.as_dict(), indent=2))
        return 0 if not verdict.problems else BacklogError.exit_code
    if verdict.problems:
        raise BacklogError(str(p) for p in verdict.problems)
    print(verdict.ok_line())
    return 0


def unreadable(
    app: App, exc: BacklogError, ref: str | None, new_since: str | None
) -> dict[str, object]:
    """``--json`` for a backlog that cannot be read at all: the keys of
    :meth:`Verdict.as_dict`, with ``fatal`` true and no gap count."""
    records = [p for p in exc.records if isinstance(p, Problem)]
    shown = records[0].path if records else display_path(app.settings.backlog_path)
    problems = [p.as_dict() for p in records] or [
        Problem(shown, 0, "", line, None, True).as_dict() | {"text": line} for line in exc.lines()
    ]
    return {
        "backlog": f"{shown} at {ref[:12]}" if ref else shown,
        "ok": False,
        "fatal": True,
        "gaps": None,
        "quarantined": sorted({p.gap_id for p in records if p.gap_id is not None}),
        "problems": problems,
        "known_problems": 0,
        "new_since": new_since,
    }


def check(app: App, ref: str | None = None, new_since: str | None = None) -> Verdict:
    """Validate the backlog (at ``ref``, or the source's current one), tolerating the
    problems present at ``new_since`` already. Fatal problems raise ``BacklogError``."""
    settings = app.settings
    shown = display_path(settings.backlog_path)
    if ref is None:
        backlog = app.load_backlog(strict=False)
        if not backlog.path.exists():  # not a file: an issue tracker, a database, ...
            shown = str(backlog.path)
    else:
        _commit(app, ref)
        backlog = _at(app, ref, shown)
        shown = f"{shown} at {ref[:12]}"
    problems = backlog.problems
    if new_since is None:
        return Verdict(shown, backlog, problems)
    _commit(app, new_since)
    before = _at(app, new_since, display_path(settings.backlog_path), required=False)
    known = Counter(p.key for p in before.problems)  # counted: a second of a kind is new
    fresh = []
    for problem in problems:
        if known[problem.key] > 0:
            known[problem.key] -= 1
        else:
            fresh.append(problem)
    return Verdict(shown, backlog, tuple(fresh), len(problems) - len(fresh), new_since)


def _commit(app: App, ref: str) -> None:
    """``ref`` must name a commit: a typo must not make every problem look new."""
    verify = ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"]
    if run_command(verify, cwd=app.settings.repo_root, check=False).returncode != 0:
        raise UsageError(f"{ref!r}: unknown ref (not a commit in {app.settings.repo_root})")


def _at(app: App, ref: str, shown: str, required: bool = True) -> Backlog:
    settings = app.settings
    if settings.backlog_source != "yaml":
        raise UsageError(f"--ref/--new-since: the {settings.backlog_source!r} source has no refs")
    found = backlog_at(
        settings.repo_root, ref, settings.backlog_path, settings.status_aliases, display=shown
    )
    if found is None and required:
        raise UsageError(f"--ref: {shown} is not in {ref!r}")
    if found is not None and any(p.fatal for p in found.problems):
        if required:
            raise BacklogError(found.problems)
        return Backlog(found.path, ())  # unreadable before: every problem now is new
    return found if found is not None else Backlog(settings.backlog_path, ())
