"""The default prompt an agent receives on stdin (the reference prompt contract).

It names the gap, says the gap is already claimed for this agent, asks for the work, a
commit on the dispatch branch and a pull request, and asks for the PR number as the reply.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_chump.core.model import Gap
from pytest_chump.core.protocols import Dispatch


def build_prompt(gap: Gap, dispatch: Dispatch, lessons: Sequence[str] = ()) -> str:
    """The prompt for ``gap``; ``lessons`` are short facts learned from earlier dispatches."""
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
    if lessons:
        parts.append("Lessons from earlier dispatches:\n" + "\n".join(f"- {x}" for x in lessons))
    parts.append(
        "Do the work, run the project's tests, commit on this branch, push it and open a pull "
        f"request for {gap.id}. Do not dispatch other agents. When the pull request is open, "
        "reply with its number only."
    )
    return "\n\n".join(parts) + "\n"
