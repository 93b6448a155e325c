"""What a failed pull request tells the next attempt, read through ``gh``: the end of the
failed workflow runs' logs, and the review comments (body, file, line).

Best effort and bounded: each ``gh`` call that fails or answers oddly is skipped (the
verdict and the check names reach the prompt anyway); at most ``RUNS`` runs, the last
``LOG_LINES`` lines of each, ``COMMENTS`` comments of at most ``BODY_CHARS`` characters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from subprocess import CompletedProcess
from typing import Any

RUNS, LOG_LINES, COMMENTS, BODY_CHARS = 2, 60, 30, 1000
FAILED_RUNS = frozenset({"failure", "timed_out", "startup_failure", "action_required"})

Gh = Callable[[list[str]], CompletedProcess[str]]


def feedback(gh: Gh, repo: str, branch: str, number: int | None, failing: bool) -> str:
    """The sections for the next attempt's prompt ("" when there is nothing to add)."""
    parts = []
    if number is not None:  # first: short, and what a person asked for (the notes keep the head)
        parts.append(_reviews(gh, repo, number))
    if failing:
        parts += [_run_log(gh, repo, run) for run in _failed_runs(gh, repo, branch)]
    return "\n\n".join(p for p in parts if p)


def _call(gh: Gh, argv: list[str]) -> str | None:
    """``gh``'s stdout, or None when it failed (missing, timing out, a non-zero exit)."""
    try:
        proc = gh(argv)
    except Exception:  # best effort: this section is skipped
        return None
    return proc.stdout if proc.returncode == 0 else None


def _json(gh: Gh, argv: list[str]) -> Any:
    out = _call(gh, argv)
    try:
        return json.loads(out) if out is not None else None
    except ValueError:
        return None


def _failed_runs(gh: Gh, repo: str, branch: str) -> list[dict[str, Any]]:
    fields = "databaseId,conclusion,name,workflowName"
    argv = ["run", "list", "--repo", repo, "--branch", branch, "--json", fields, "--limit", "20"]
    runs = _json(gh, argv)
    if not isinstance(runs, list):
        return []
    failed = [r for r in runs if isinstance(r, dict) and str(r.get("conclusion")) in FAILED_RUNS]
    return [r for r in failed if isinstance(r.get("databaseId"), int)][:RUNS]


def _run_log(gh: Gh, repo: str, run: dict[str, Any]) -> str:
    out = _call(gh, ["run", "view", str(run["databaseId"]), "--repo", repo, "--log-failed"])
    if not out or not out.strip():
        return ""
    lines = out.rstrip("\n").splitlines()[-LOG_LINES:]
    name = run.get("workflowName") or run.get("name") or "workflow"
    return f"The end of the failed run {name!s} (#{run['databaseId']}):\n" + "\n".join(lines)


def _reviews(gh: Gh, repo: str, number: int) -> str:
    lines = []
    view = _json(gh, ["pr", "view", str(number), "--repo", repo, "--json", "reviews"])
    reviews = view.get("reviews") if isinstance(view, dict) else None
    for review in reviews if isinstance(reviews, list) else []:
        if isinstance(review, dict) and review.get("state") == "CHANGES_REQUESTED":
            body = _body(review.get("body"))
            if body:
                lines.append(f"- review by {_login(review.get('author'))}: {body}")
    newest = f"repos/{repo}/pulls/{number}/comments?sort=created&direction=desc&per_page={COMMENTS}"
    comments = _json(gh, ["api", newest])
    for comment in (comments if isinstance(comments, list) else [])[:COMMENTS]:
        if not isinstance(comment, dict):
            continue
        where = str(comment.get("path") or "")
        line = comment.get("line") or comment.get("original_line")
        if isinstance(line, int) and not isinstance(line, bool):
            where += f":{line}"
        body = _body(comment.get("body"))
        if body:
            lines.append(f"- {where or 'comment'} ({_login(comment.get('user'))}): {body}")
    return "Review comments:\n" + "\n".join(lines) if lines else ""


def _body(value: object) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= BODY_CHARS else text[: BODY_CHARS - 3] + "..."


def _login(user: object) -> str:
    login = user.get("login") if isinstance(user, dict) else None
    return str(login) if login else "someone"
