"""Running the GitHub CLI: the user's own ``gh auth``, so chump never holds a token.

Shared by the ``github`` PR provider and the ``github`` backlog source: one way to run
``gh``, and one-line messages for its failures (not logged in, rate limited, missing,
timing out, an answer of the wrong shape), redacted and bounded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from pytest_chump.core.errors import ChumpError
from pytest_chump.core.redact import redact
from pytest_chump.core.run import run

MAX_MESSAGE = 300
AUTH_MESSAGE = "gh: not logged in to GitHub or credentials rejected (run `gh auth login`)"
RATE_MESSAGE = "gh: GitHub API rate limit exceeded; polling less often until it recovers"


def run_gh(argv: list[str], cwd: Path, timeout: float, label: str) -> CompletedProcess[str]:
    """Run ``gh`` (``argv[0]``); a missing binary or a timeout is a one-line ``ChumpError``."""
    try:
        return run(argv, cwd=cwd, timeout=timeout, check=False)
    except ChumpError as exc:
        if str(exc) == f"{argv[0]}: command not found":
            hint = "install the GitHub CLI or set gh_bin"
            raise ChumpError(f"{argv[0]}: command not found ({hint})") from None
        raise ChumpError(f"{label}: no answer within {timeout:g}s") from None
    except OSError as exc:
        raise ChumpError(f"{argv[0]}: cannot run: {exc.strerror}") from None


def json_object(text: str) -> dict[str, Any] | None:
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) else None


def failure_message(
    code: int, stderr: str, payload: Mapping[str, Any] | None, command: str = "gh api graphql"
) -> str:
    """One line for a failed ``gh`` run: auth, rate limit, GraphQL errors, else its stderr."""
    errors = payload.get("errors") if payload else None
    text = f"{stderr}\n{errors or ''}".lower()
    if code == 4 or "gh auth login" in text or "http 401" in text:
        return AUTH_MESSAGE
    if "rate limit" in text or "rate_limited" in text or "http 429" in text:
        return RATE_MESSAGE
    if errors:
        return errors_message(errors)
    lines = stderr.strip().splitlines()
    return f"{command}: exit status {code}" + (f": {lines[-1]}" if lines else "")


def errors_message(errors: object) -> str:
    """The first GraphQL error of an answer, and how many more there were."""
    items = errors if isinstance(errors, list) else [errors]
    first = items[0] if items else {}
    text = first.get("message") if isinstance(first, dict) else first
    if isinstance(first, dict) and first.get("type") == "RATE_LIMITED":
        return RATE_MESSAGE
    more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
    return f"gh api graphql: GitHub answered with an error: {text}{more}"


def one_line(text: str) -> str:
    """``text`` redacted, on one line, at most ``MAX_MESSAGE`` characters."""
    flat = redact(" ".join(text.split()))
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 3] + "..."
