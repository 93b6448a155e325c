"""The ``github`` provider: pull-request state of every branch in flight from one ``gh`` call.

It runs the GitHub CLI, so it uses the user's own ``gh auth`` and chump never holds a token.
Each poll is one batched ``gh api graphql`` call (PRs, checks and lost races of all branches);
while GitHub keeps failing, polls back off exponentially instead of hammering the API. An
answer of the wrong shape is such a failure too (``gh: unexpected answer: ...``), never a crash.

Checks: a CheckRun conclusion or StatusContext state of ``FAILURE``, ``ERROR``, ``TIMED_OUT``
or ``ACTION_REQUIRED`` fails (the rule of ``gh pr checks``); ``CANCELLED``, ``SKIPPED`` and
``NEUTRAL`` do not; ``SUCCESS`` passes; anything else (``STARTUP_FAILURE``, ``STALE``, none
yet) is pending. Only required checks decide when GitHub says which are: ``isRequired`` needs
the PR number, so the provider remembers each branch's number and, from the next poll on, asks
it in the same single call. If at least one check is required, only the required ones make the
PR "failing" (and only they are named), pending or passing; if none is required (no branch
protection) or required-ness is not known yet (first poll of a branch), every check counts.

The repository is taken once from the URL of the base ref's remote (``origin`` for
``origin/main``), owner and name being its last two path segments; ``gh`` picks the host
(set ``GH_HOST`` for GitHub Enterprise).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from pytest_chump import hookimpl
from pytest_chump.core.config import Settings
from pytest_chump.core.errors import ChumpError, UsageError
from pytest_chump.core.gh import (
    AUTH_MESSAGE,
    MAX_MESSAGE,
    RATE_MESSAGE,
    errors_message,
    failure_message,
    json_object,
    one_line,
    run_gh,
)
from pytest_chump.core.protocols import PrStatus, Register, Watch
from pytest_chump.core.run import run
from pytest_chump.providers import github_feedback, github_parse, github_query

__all__ = ["AUTH_MESSAGE", "MAX_MESSAGE", "RATE_MESSAGE", "GithubProvider"]  # names of 0.1

TIMEOUT_S = 30.0
MAX_BACKOFF_S = 600.0
_NETWORK_URL = re.compile(r"[\w+.-]+://|[^/:]+:")  # scheme://... or scp-like host:path
_SLUG = re.compile(r"[:/]([^/:]+)/([^/]+?)(?:\.git)?/*$")


class GithubProvider:
    """Polls GitHub through ``gh``; ``calls`` counts ``gh`` invocations."""

    name = "github"

    def __init__(
        self,
        repo_root: Path,
        gh_bin: str = "gh",
        base: str = "main",
        *,
        remote: str = "origin",
        repo: str | None = None,
        poll_interval: float = 30.0,
        timeout: float = TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo_root = repo_root
        self.gh_bin = gh_bin
        self.base = base
        self.remote = remote
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.clock = clock
        self.calls = 0
        self._repo = _split_slug(repo) if repo else None
        self._repo_from_remote = repo is None
        self._failures = 0
        self._retry_at = 0.0
        self._error: str | None = None
        self._numbers: dict[str, int] = {}  # branch -> its PR number seen by the last poll

    def poll(self, watches: Sequence[Watch]) -> Mapping[str, PrStatus]:
        """One ``gh`` call for all ``watches`` (none when empty or while backing off)."""
        if not watches:
            return {}
        now = self.clock()
        if self._error is not None and now < self._retry_at:
            raise ChumpError(self._error)
        try:
            result = self._poll(watches)
        except ChumpError as exc:
            message = one_line(str(exc))
            self._back_off(now, message)
            raise ChumpError(message) from None
        self._failures, self._error = 0, None
        return result

    def _back_off(self, now: float, message: str) -> None:
        """After the k-th failure in a row, wait poll_interval * 2**k (at most 10 minutes)."""
        self._failures += 1
        self._error = message
        self._retry_at = now + min(MAX_BACKOFF_S, self.poll_interval * 2**self._failures)

    def _poll(self, watches: Sequence[Watch]) -> dict[str, PrStatus]:
        owner, name = self.repository()
        known = {w.branch: self._numbers[w.branch] for w in watches if w.branch in self._numbers}
        data = self._graphql(github_query.build(owner, name, self.base, watches, known))
        try:
            result = github_parse.parse(data, watches, known)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            # parse checks every shape it reads; this only keeps a missed one from the loop
            raise github_parse.malformed(type(exc).__name__) from None
        self._numbers = {b: s.number for b, s in result.items() if s.number is not None}
        return result

    def feedback(self, branch: str, status: PrStatus | None) -> str:
        """What the next attempt should know beyond the verdict: the end of the failed runs'
        logs and the review comments (best effort, bounded; see ``github_feedback``)."""
        try:
            owner, name = self.repository()
        except ChumpError:
            return ""
        failing = status is not None and status.checks == "failing"
        number = status.number if status is not None else None
        return github_feedback.feedback(
            lambda argv: run_gh([self.gh_bin, *argv], self.repo_root, self.timeout, "gh"),
            f"{owner}/{name}",
            branch,
            number,
            failing,
        )

    def preflight(self) -> None:
        """Before any dispatch: the remote is a GitHub repository and ``gh`` is there and
        logged in; else a one-line ``UsageError`` naming the problem and the fix."""
        try:
            self.repository()
        except ChumpError as exc:
            raise UsageError(f'{exc}: point it at GitHub, or use pr_provider = "git"') from None
        argv = [self.gh_bin, "auth", "status"]
        host = _host(self._remote_url()) if self._repo_from_remote else ""
        if host:  # only the account this repository needs: another host's stale token is not ours
            argv += ["--hostname", host]
        try:
            proc = run_gh(argv, self.repo_root, self.timeout, "gh")
        except ChumpError as exc:
            raise UsageError(str(exc)) from None
        if proc.returncode != 0:
            problem = failure_message(proc.returncode, proc.stderr, None, "gh auth status")
            raise UsageError(one_line(problem))

    def repository(self) -> tuple[str, str]:
        """(owner, name) of the GitHub repository, read once from the remote's URL."""
        if self._repo is None:
            url = self._remote_url()
            if not _NETWORK_URL.match(url) or url.startswith("file:"):
                raise ChumpError(f"github provider: remote {self.remote!r} is not a GitHub URL")
            self._repo = _split_slug(url)
        return self._repo

    def _remote_url(self) -> str:
        proc = run(["git", "remote", "get-url", self.remote], cwd=self.repo_root, check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise ChumpError(f"github provider: no git remote {self.remote!r} to find the repo")
        return proc.stdout.strip()

    def _graphql(self, args: list[str]) -> dict[str, Any]:
        self.calls += 1
        proc = self._run([self.gh_bin, "api", "graphql", *args])
        payload = json_object(proc.stdout)
        if proc.returncode != 0:
            raise ChumpError(failure_message(proc.returncode, proc.stderr, payload))
        if payload is None:
            raise ChumpError(f"gh api graphql: answer is not JSON: {proc.stdout[:80]!r}")
        if payload.get("errors"):
            raise ChumpError(errors_message(payload["errors"]))
        data = payload.get("data")
        if not isinstance(data, dict):
            raise ChumpError("gh api graphql: answer has no data")
        return data

    def _run(self, argv: list[str]) -> CompletedProcess[str]:
        return run_gh(argv, self.repo_root, self.timeout, "gh api graphql")


def _host(url: str) -> str:
    """The host of a remote URL (https, ssh or scp-like); "" when it has none."""
    match = re.match(r"^(?:[a-z+]+://)?(?:[^@/]+@)?([A-Za-z0-9.-]+)[:/]", url.strip())
    return match.group(1) if match else ""


def _split_slug(url: str) -> tuple[str, str]:
    """(owner, name) from ``owner/name`` or a remote URL (https, ssh, scp-like)."""
    match = _SLUG.search("/" + url.strip())
    if match is None:
        raise ChumpError("github provider: the remote's URL names no GitHub owner/name")
    return match.group(1), match.group(2)


def split_base_ref(base_ref: str) -> tuple[str, str]:
    """(remote, branch) of a base ref: ``origin/main`` -> (origin, main); ``main`` -> (origin,
    main); ``refs/remotes/up/rel/1`` -> (up, rel/1)."""
    ref = base_ref.removeprefix("refs/remotes/")
    if ref.startswith("refs/heads/"):
        return "origin", ref.removeprefix("refs/heads/")
    remote, sep, branch = ref.partition("/")
    return (remote, branch) if sep and branch else ("origin", ref)


def _factory(settings: Settings) -> GithubProvider:
    remote, base = split_base_ref(settings.base_ref)
    return GithubProvider(
        settings.repo_root,
        settings.gh_bin,
        base,
        remote=remote,
        poll_interval=settings.poll_interval,
    )


@hookimpl
def chump_register_pr_providers(register: Register) -> None:
    register("github", _factory)
