"""Names why a failed dispatch failed, from the loop's verdict plus what the agent itself said.

Pure and table-driven so each rule is tested against real-looking agent output. The class is
what the reflection notes carry (`` cause:<class>``) and what tells "wait out a rate limit"
apart from "a human must top up credit or log in again" apart from "the code was wrong".

Precedence, highest first:

1. Success outcomes have no cause ("").
2. Causes decided outside the agent are kept: ``interrupted`` (the operator stopped chump),
   ``worker-lost`` (the engine running the agent elsewhere lost it)
   and the PR provider's verdicts (``merge-conflict``, ``tests-failed``, ``checks-failed``).
   The PR or the operator ended the dispatch, whatever the agent's stderr says about earlier
   retries. The list is closed (``CAUSES``): other provider verdicts map onto it
   (``merge-failed`` → ``merge-conflict``, ``branch-deleted`` and the rest → ``unknown``;
   their detail stays in the reason).
3. API evidence in the agent's stderr tail or its failure report, first match wins:
   ``quota-exhausted`` > ``auth`` > ``rate-limited`` > ``server-error`` (the API answered
   5xx) > ``network`` (the agent could not reach its API at all: name resolution, refused or
   reset connections). Quota beats rate limits because
   quota errors often arrive as HTTP 429 (OpenAI ``insufficient_quota``, usage-limit 429s);
   both quota and auth need a human, a rate limit only needs time. This evidence replaces
   the generic causes the loop sets (``agent-error``, ``timeout``, ``spawn-failed``, none):
   a timeout whose stderr is full of 429s was ``rate-limited``.
4. The loop's own cause, else ``agent-error`` when the report says the run failed
   (``is_error``, an ``error_*`` subtype such as ``error_max_turns``), else ``unknown``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

from pytest_chump.core.model import SUCCESS_OUTCOMES
from pytest_chump.core.records import Outcome

TIMEOUT, INTERRUPTED, AGENT_ERROR = "timeout", "interrupted", "agent-error"
RATE_LIMITED, QUOTA_EXHAUSTED, AUTH = "rate-limited", "quota-exhausted", "auth"
NETWORK, SERVER_ERROR = "network", "server-error"
MERGE_CONFLICT, TESTS_FAILED, CHECKS_FAILED = "merge-conflict", "tests-failed", "checks-failed"
CHANGES_REQUESTED = "changes-requested"
SPAWN_FAILED, SETUP_FAILED, UNKNOWN = "spawn-failed", "setup-failed", "unknown"
WORKER_LOST = "worker-lost"  # the engine running the agent elsewhere lost it (a Ray node died)

CAUSES: tuple[str, ...] = (
    TIMEOUT,
    INTERRUPTED,
    AGENT_ERROR,
    RATE_LIMITED,
    QUOTA_EXHAUSTED,
    AUTH,
    NETWORK,
    SERVER_ERROR,
    MERGE_CONFLICT,
    TESTS_FAILED,
    CHECKS_FAILED,
    CHANGES_REQUESTED,
    SPAWN_FAILED,
    SETUP_FAILED,
    WORKER_LOST,
    UNKNOWN,
)

PROVIDER_CAUSES = {"merge-failed": MERGE_CONFLICT}
"""Provider verdicts outside the closed list, mapped onto it (the detail stays in the reason);
anything else unknown becomes ``unknown``."""

GENERIC_CAUSES = frozenset({"", UNKNOWN, AGENT_ERROR, TIMEOUT, SPAWN_FAILED})
"""Causes that only say the agent stopped: API evidence names the real reason instead."""


def _status(*codes: int) -> str:
    """An HTTP status in the places agents print one (``API Error: 429``, ``status: 401``,
    ``Error code: 429``, ``(429)``, ``429 Too Many Requests``), not any number in a log."""
    alt = "|".join(str(code) for code in codes)
    return (
        rf"(?:\b(?:status|code|error)\b[\s:=\"']*|api\s+error[\s:(]*)(?:{alt})\b"
        rf"|\((?:{alt})\)|\b(?:{alt})\s+(?:too\s+many\s+requests|unauthorized|\{{)"
    )


def _rule(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(alternatives), re.IGNORECASE)


# Bare "billing", "quota" or "401" are not evidence: test names and code under work say them.
EVIDENCE: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        QUOTA_EXHAUSTED,
        _rule(
            r"credit[ _]balance (?:is )?too low",
            r"insufficient[_ ]quota",
            r"\bquota (?:exceeded|exhausted)",
            r"exceeded your (?:current )?quota",
            r"billing details|plans? (?:&|and) billing|/settings/billing|billing_hard_limit",
            r"usage[_ ]limit[_ ]reached|hit your (?:usage|spend) (?:limit|cap)",
            r"\b(?:5-hour|weekly|daily|session) limit reached",
            r"\bout of credits\b",
            r"payment required|credit limit (?:exceeded|reached)",
            _status(402),
        ),
    ),
    (
        AUTH,
        _rule(
            r"authentication_error|authenticationerror|not able to authenticate",
            r"invalid[ _-]x-api-key|(?:invalid|incorrect|missing)[ _]api[ _]key",
            r"\bnot logged in\b|\brun /login\b|failed to authenticate",
            r"oauth token (?:has )?expired|token has been invalidated|token_invalidated",
            r"failed to refresh token|could not resolve authentication method",
            _status(401),
        ),
    ),
    (
        RATE_LIMITED,
        _rule(
            r"rate_limit_error|ratelimiterror|\brate[- ]limit(?:ed|s|ing)?\b",
            r"too many requests|resource_exhausted|\bthrottl(?:ed|ing)",
            r"overloaded_error|\b529\s+overloaded|\b(?:api|servers?|service)\b[^.\n]{0,20}overloaded",
            _status(429, 529),
        ),
    ),
    (
        SERVER_ERROR,
        _rule(
            r"internal server error|bad gateway|service unavailable|gateway timeout",
            r'"type"\s*:\s*"api_error"|\bapi_error\b',
            _status(500, 502, 503, 504),
        ),
    ),
    (
        NETWORK,
        _rule(
            r"could not resolve host|temporary failure in name resolution|getaddrinfo|enotfound",
            r"econnrefused|econnreset|etimedout|enetunreach|connection (?:refused|reset)",
            r"network is unreachable|no route to host|failed to connect to",
            r"apiconnectionerror|\bconnection error\b|fetch failed",
            r"error sending request|stream disconnected before completion|dial tcp",
        ),
    ),
)

REPORT_ERROR_KEYS = ("error", "errors", "message")
REPORT_RESULT_KEYS = ("result_text", "result")


def classify(outcome: Outcome, tail: Sequence[str], report: Mapping[str, object]) -> str:
    """The cause class of ``outcome`` ("" for a success); see the module docstring."""
    if outcome.name in SUCCESS_OUTCOMES:
        return ""
    if outcome.cause not in GENERIC_CAUSES:
        cause = PROVIDER_CAUSES.get(outcome.cause, outcome.cause)
        return cause if cause in CAUSES else UNKNOWN
    return evidence(tail, report) or outcome.cause or _report_cause(report) or UNKNOWN


def evidence(tail: Sequence[str], report: Mapping[str, object]) -> str:
    """The API-level cause the agent's words show (quota, auth, rate limit), else ""."""
    texts = [*tail, *report_texts(report)]
    for cause, pattern in EVIDENCE:
        if any(pattern.search(text) for text in texts):
            return cause
    return ""


def evidence_line(cause: str, tail: Sequence[str], report: Mapping[str, object]) -> str:
    """The agent's own words that show ``cause`` (e.g. ``Not logged in · Please run
    /login``): the first line of its report or stderr tail matching that cause, else ""."""
    pattern = dict(EVIDENCE).get(cause)
    if pattern is None:
        return ""
    for text in [*report_texts(report, failed=True), *tail]:
        for line in text.splitlines():
            if pattern.search(line):
                return line.strip()
    return ""


def report_texts(report: Mapping[str, object], failed: bool | None = None) -> list[str]:
    """Error strings of the agent's report; its final result text only when the run failed
    (a successful run's summary may well talk about rate limits it implemented)."""
    failed = report_failed(report) if failed is None else failed
    keys = REPORT_ERROR_KEYS + (REPORT_RESULT_KEYS if failed else ())
    return [text for key in keys for text in _strings(report.get(key))]


def report_failed(report: Mapping[str, object]) -> bool:
    """Whether the agent reported its own run as failed (claude ``is_error`` / ``error_*``)."""
    subtype = report.get("subtype")
    return report.get("is_error") is True or (
        isinstance(subtype, str) and subtype.startswith("error")
    )


def _report_cause(report: Mapping[str, object]) -> str:
    return AGENT_ERROR if report_failed(report) else ""


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
