"""The prompt an agent receives on stdin: the reference contract, fitted to the repository.

It names the gap, says it is claimed for this agent, states its description, dependencies and
scope (``paths``), puts in the repository's own rules file, lessons from earlier dispatches,
how work ships here (a pull request on GitHub; with the offline ``git`` provider, a commit the
merge gate merges, or a push to the base), and asks the agent to mark the gap done in the
backlog in the same change, so a fresh clone never dispatches it again. A repository may own
the whole text instead: ``prompt_template``, a file with named placeholders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from pytest_chump.core.config import Settings
from pytest_chump.core.errors import UsageError
from pytest_chump.core.model import Gap
from pytest_chump.core.placeholders import fill, placeholders
from pytest_chump.core.protocols import Dispatch

RULES_LIMIT = 64 * 1024  # characters of the rules file put into a prompt
PLACEHOLDERS: tuple[str, ...] = (
    "gap_id",
    "title",
    "description",
    "priority",
    "effort",
    "depends_on",
    "paths",
    "scope",
    "branch",
    "worktree",
    "base_ref",
    "rules",
    "lessons",
    "ship",
    "record",
    "previous_attempt",
)


@dataclass(frozen=True)
class Briefing:
    """What a prompt says besides the gap itself."""

    ship: str  # how the work ships in this repository
    record: str = ""  # how to mark the gap done in the backlog ("" when chump cannot say)
    rules: str = ""  # the repository's rules file
    lessons: tuple[str, ...] = ()
    base_ref: str = ""


def briefing(settings: Settings, gap: Gap, lessons: Sequence[str] = ()) -> Briefing:
    """The briefing for ``gap`` under ``settings`` (reads the rules file, if there is one)."""
    return Briefing(
        ship_text(settings, gap),
        record_text(settings, gap),
        rules(settings),
        tuple(lessons),
        settings.base_ref,
    )


def build_prompt(
    gap: Gap, dispatch: Dispatch, lessons: Sequence[str] = (), brief: Briefing | None = None
) -> str:
    """The default prompt for ``gap``."""
    brief = brief or Briefing(ship=GITHUB_SHIP.format(gap_id=gap.id), lessons=tuple(lessons))
    parts = [
        f"You are working on gap {gap.id}: {gap.title or '(untitled)'}",
        f"Priority {gap.priority or '?'}, effort {gap.effort or '?'}. The gap is already claimed "
        "for you by the orchestrator; nobody else is working on it.",
        f"Your working directory is a git worktree on branch {dispatch.branch}.",
    ]
    if gap.description:
        parts.append(f"Description:\n{gap.description.strip()}")
    if gap.depends_on:
        parts.append(f"It builds on {', '.join(gap.depends_on)}, which are done.")
    if gap.paths or gap.scope:
        parts.append(scope_text(gap))
    if brief.rules:
        parts.append(f"The repository's rules for agents:\n{brief.rules}")
    if brief.lessons:
        lines = "\n".join(f"- {x}" for x in brief.lessons)
        parts.append(f"Lessons from earlier dispatches:\n{lines}")
    if previous := previous_attempt(dispatch):
        parts.append(previous)
    parts.append("Do the work and run the project's tests. Do not dispatch other agents.")
    if brief.record:
        parts.append(brief.record)
    parts.append(brief.ship)
    return "\n\n".join(parts) + "\n"


GITHUB_SHIP = (
    "Commit on this branch, push it and open a pull request for {gap_id}. When the pull "
    "request is open, reply with its number only."
)


def previous_attempt(dispatch: Dispatch) -> str:
    """What failed in the gap's previous attempt ("" for a first attempt): the check names,
    the failing tests and the end of their log, the conflicting files, the review comments,
    as the finisher collected them when that attempt ended."""
    chain = dispatch.meta.get("chain")
    attempt = chain.get("attempt", 1) if isinstance(chain, dict) else 1
    feedback = str(dispatch.meta.get("feedback") or "").strip()
    if attempt <= 1 and not feedback:
        return ""
    lines = [
        f"Previous attempt: this is attempt {attempt} at this gap. Branch {dispatch.branch} "
        "holds the work of the attempt before; it did not ship."
    ]
    if feedback:
        lines.append(f"What failed:\n{feedback}")
    lines.append("Fix what failed, keep what works, and ship again.")
    return "\n".join(lines)


def ship_text(settings: Settings, gap: Gap) -> str:
    """How the work ships, for the configured PR provider."""
    base = settings.base_ref
    if settings.pr_provider == "git" and settings.merge_gate:
        return (
            f"Commit your work on this branch and do not push it: when you exit, chump runs the "
            f"checks on your branch and merges it into {base}. Reply with one line saying what "
            "you did."
        )
    if settings.pr_provider == "git":
        return (
            f"Commit on this branch, then land it on {base}: rebase onto {base} and push your "
            f"commits to it (fetch and rebase again if someone pushed first). It counts as "
            f"shipped once it is on {base}. Reply with one line saying what you did."
        )
    if settings.pr_provider == "instant":
        return "Commit your work on this branch. Reply with one line saying what you did."
    return GITHUB_SHIP.format(gap_id=gap.id)


def record_text(settings: Settings, gap: Gap) -> str:
    """How to mark the gap done in the backlog in the same change ("" when not known)."""
    if settings.backlog_source == "github" and gap.id.startswith("GH-"):
        number = gap.id.removeprefix("GH-")
        return (
            f"Write `Closes #{number}` in the pull request description (or, without a pull "
            "request, in the commit message), so the issue closes when the work lands."
        )
    if settings.backlog_source != "yaml":
        return ""
    where = backlog_file(settings, gap)
    today = datetime.now(UTC).date().isoformat()
    pr = " and `closed_pr:` the pull request's number" if settings.pr_provider != "git" else ""
    return (
        f"In the same change, mark the gap shipped in the backlog ({where}): on gap {gap.id} set "
        f"`status: done`, `closed_date: {today}`{pr}. Change nothing else there."
    )


def backlog_file(settings: Settings, gap: Gap) -> str:
    """The file (relative to the repository) holding ``gap``: the file it was read from in a
    backlog directory, else the backlog file."""
    root = settings.repo_root.absolute()  # (what is remembered must not depend on the cwd)
    for candidate in (gap.source, str(settings.backlog_path)):
        if candidate and (found := _inside(root, candidate)) is not None:
            return found
    return settings.backlog


@lru_cache(maxsize=256)
def _inside(repo_root: Path, candidate: str) -> str | None:
    """``candidate`` (relative to the absolute ``repo_root``, or absolute) as a path relative
    to the repository once symlinks are resolved; None when it lies outside. Remembered:
    every prompt asks about the same few backlog files, and resolving a path looks at each
    of its components on disk."""
    root = repo_root.resolve()
    path = Path(candidate)
    path = path if path.is_absolute() else root / path
    try:
        return path.resolve().relative_to(root).as_posix()
    except (ValueError, OSError):
        return None


def scope_text(gap: Gap) -> str:
    lines = ["Scope of this gap: keep your changes to"]
    lines += [f"- {path}" for path in gap.paths]
    if gap.scope:
        lines.append(gap.scope.strip())
    return "\n".join(lines)


def rules(settings: Settings) -> str:
    """The repository's rules file (bounded), or "" when there is none."""
    if not settings.rules_file:
        return ""
    path = settings.repo_root / settings.rules_file
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    if len(text) > RULES_LIMIT:
        text = text[:RULES_LIMIT] + f"\n[... {settings.rules_file} cut at {RULES_LIMIT} characters]"
    return text.strip()


# --- a prompt the repository owns ---------------------------------------------------------


def load_template(settings: Settings) -> str | None:
    """The ``prompt_template`` file's text, checked; None when there is none configured.

    A missing file or an unknown placeholder is a ``UsageError`` — raised before anything
    is dispatched.
    """
    if not settings.prompt_template:
        return None
    path = settings.repo_root / settings.prompt_template
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"prompt_template {path}: cannot read: {exc}") from None
    try:
        placeholders(text, PLACEHOLDERS)
    except ValueError as exc:
        line = _line_of(text, str(exc))
        raise UsageError(f"prompt_template {path}{line}: {exc}") from None
    return text


def _line_of(text: str, message: str) -> str:
    """``:N`` of the placeholder the message names, when it can be found."""
    start = message.find("{")
    end = message.find("}", start)
    if start < 0 or end < 0:
        return ""
    where = text.find(message[start : end + 1])
    return f":{text.count(chr(10), 0, where) + 1}" if where >= 0 else ""


def render(template: str, gap: Gap, dispatch: Dispatch, brief: Briefing) -> str:
    """``template`` filled for ``gap``."""
    values = {
        "gap_id": gap.id,
        "title": gap.title,
        "description": gap.description,
        "priority": gap.priority,
        "effort": gap.effort,
        "depends_on": ", ".join(gap.depends_on),
        "paths": "\n".join(gap.paths),
        "scope": gap.scope,
        "branch": dispatch.branch,
        "worktree": str(dispatch.worktree),
        "base_ref": brief.base_ref,
        "rules": brief.rules,
        "lessons": "\n".join(f"- {x}" for x in brief.lessons),
        "ship": brief.ship,
        "record": brief.record,
        "previous_attempt": previous_attempt(dispatch),
    }
    text = fill(template, values)
    if values["previous_attempt"] and "{previous_attempt}" not in template:
        text = text.rstrip("\n") + "\n\n" + values["previous_attempt"] + "\n"  # never lost
    return text
