"""Failure cause classification: real-looking agent output per class, and the precedence rules.

Lines are paraphrased from what Claude Code, Codex and aider (litellm) print; request ids and
timestamps are made up.
"""

from __future__ import annotations

import pytest

from pytest_chump.core.records import Outcome
from pytest_chump.reflect import record as reflection
from pytest_chump.reflect.causes import CAUSES, classify, evidence

KILLED = Outcome("killed", reason="exit code 1", cause="agent-error")
TIMED_OUT = Outcome("killed", reason="soft-deadline exceeded (60s x 2)", cause="timeout")

CLAUDE_429 = (
    'API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"This request'
    ' would exceed your account\'s rate limit. Please try again later."},"request_id":"req_01X"}'
)
CLAUDE_529 = (
    'API Error (529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})'
    " · Retrying in 4 seconds… (attempt 4/10)"
)
CLAUDE_CREDIT = (
    'Error: 400 {"type":"error","error":{"type":"invalid_request_error","message":"Your credit'
    ' balance is too low to access the Anthropic API. Please go to Plans & Billing."}}'
)
CLAUDE_OAUTH = (
    'API Error: 401 {"type":"error","error":{"type":"authentication_error","message":"OAuth'
    ' token has expired. Please obtain a new token."}} · Please run /login'
)
CODEX_429 = "ERROR stream error: exceeded retry limit, last status: 429 Too Many Requests, id: 9a"
CODEX_401 = "ERROR stream error: exceeded retry limit, last status: 401 Unauthorized, id: 7f"
AIDER_RATE = (
    "litellm.RateLimitError: AnthropicException - "
    '{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens'
    ' has exceeded your per-minute rate limit"}}'
)
AIDER_AUTH = (
    "litellm.AuthenticationError: AnthropicException - "
    '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}'
)
GEMINI_QUOTA = (
    "litellm.RateLimitError: VertexAIException - error code 429: You exceeded your current"
    " quota, please check your plan and billing details."
)

# (case, outcome, stderr tail, agent report, expected cause)
CASES: list[tuple[str, Outcome, tuple[str, ...], dict[str, object], str]] = [
    ("claude 429 in stderr", KILLED, (CLAUDE_429,), {}, "rate-limited"),
    ("claude 529 overloaded", KILLED, (CLAUDE_529,), {}, "rate-limited"),
    (
        "claude plain rate limit text",
        KILLED,
        ("API Error: Rate limit reached",),
        {},
        "rate-limited",
    ),
    (
        "claude server-side limiting (not the usage limit)",
        KILLED,
        (
            "API Error: Server is temporarily limiting requests (not your usage limit)"
            " · Rate limited",
        ),
        {},
        "rate-limited",
    ),
    ("codex 429 retries exhausted", KILLED, (CODEX_429,), {}, "rate-limited"),
    ("aider litellm rate limit", KILLED, (AIDER_RATE,), {}, "rate-limited"),
    (
        "aider hint mentions quotas but is a rate limit",
        KILLED,
        ("The API provider has rate limited you. Try again later or check your quotas.",),
        {},
        "rate-limited",
    ),
    (
        "aider servers overloaded",
        KILLED,
        ("ERROR: The API provider's servers are down or overloaded.",),
        {},
        "rate-limited",
    ),
    ("bedrock throttling", KILLED, ("ERROR ThrottlingException: slow down",), {}, "rate-limited"),
    ("claude credit balance", KILLED, (CLAUDE_CREDIT,), {}, "quota-exhausted"),
    (
        "claude result text: credit balance",
        Outcome("killed", reason="agent error", cause="agent-error"),
        (),
        {"is_error": True, "subtype": "success", "result_text": "Credit balance is too low"},
        "quota-exhausted",
    ),
    (
        "claude subscription usage limit",
        KILLED,
        ("Error: Claude AI usage limit reached|1750708800",),
        {},
        "quota-exhausted",
    ),
    (
        "codex usage limit in its error event",
        KILLED,
        (),
        {"is_error": True, "error": "You've hit your usage limit. Try again in 4 days 20 hours."},
        "quota-exhausted",
    ),
    (
        "codex quota exceeded in turn.failed",
        KILLED,
        (),
        {"errors": ["Quota exceeded. Check your plan and billing details."]},
        "quota-exhausted",
    ),
    (
        "openai insufficient_quota arrives as a 429 and is still quota",
        KILLED,
        ("ERROR: Error code: 429 - {'error': {'type': 'insufficient_quota'}}",),
        {},
        "quota-exhausted",
    ),
    ("gemini quota via litellm 429", KILLED, (GEMINI_QUOTA,), {}, "quota-exhausted"),
    (
        "claude invalid api key",
        KILLED,
        (),
        {"is_error": True, "result_text": "Invalid API key · Please run /login"},
        "auth",
    ),
    ("claude oauth expired", KILLED, (CLAUDE_OAUTH,), {}, "auth"),
    ("claude not logged in", KILLED, ("Error: Not logged in · Please run /login",), {}, "auth"),
    ("codex 401 retries exhausted", KILLED, (CODEX_401,), {}, "auth"),
    (
        "codex refresh token",
        KILLED,
        ("ERROR Failed to refresh token: 401 Unauthorized: please sign in again",),
        {},
        "auth",
    ),
    ("aider invalid x-api-key", KILLED, (AIDER_AUTH,), {}, "auth"),
    (
        "auth beats rate limit",
        KILLED,
        (CODEX_429, "ERROR authentication_error: invalid x-api-key"),
        {},
        "auth",
    ),
    ("quota beats auth", KILLED, (CLAUDE_OAUTH, CLAUDE_CREDIT), {}, "quota-exhausted"),
    # evidence overrides the generic causes the loop sets
    ("timeout full of 429s", TIMED_OUT, (CLAUDE_429,) * 5, {}, "rate-limited"),
    ("timeout without evidence", TIMED_OUT, ("WARN slow test",), {}, "timeout"),
    ("stalled, no cause, 429", Outcome("stalled"), (CODEX_429,), {}, "rate-limited"),
    ("spawn failed", Outcome("killed", cause="spawn-failed"), (), {}, "spawn-failed"),
    # causes decided outside the agent are kept
    (
        "interrupted is kept",
        Outcome("killed", reason="interrupted by SIGINT", cause="interrupted"),
        (CLAUDE_429,),
        {},
        "interrupted",
    ),
    (
        "tests-failed is kept",
        Outcome("ci_failed", 7, cause="tests-failed"),
        (CLAUDE_429,),
        {},
        "tests-failed",
    ),
    (
        "merge-conflict kept",
        Outcome("ci_failed", 7, cause="merge-conflict"),
        (),
        {},
        "merge-conflict",
    ),
    ("checks-failed kept", Outcome("ci_failed", 8, cause="checks-failed"), (), {}, "checks-failed"),
    (
        "other provider causes map onto the closed list",
        Outcome("ci_failed", 9, cause="branch-deleted"),
        (),
        {},
        "unknown",
    ),
    (
        "a refused merge is a conflict",
        Outcome("ci_failed", 9, cause="merge-failed"),
        (),
        {},
        "merge-conflict",
    ),
    # the report when there is no API evidence
    (
        "max turns",
        Outcome("killed", reason="agent error: error_max_turns"),
        (),
        {"is_error": True, "subtype": "error_max_turns", "num_turns": 30},
        "agent-error",
    ),
    (
        "error during execution",
        Outcome("stalled"),
        (),
        {"subtype": "error_during_execution", "errors": ["tool crashed"]},
        "agent-error",
    ),
    ("plain agent error", KILLED, ("ERROR something broke",), {}, "agent-error"),
    ("nothing known", Outcome("stalled", reason="exited without a PR"), (), {}, "unknown"),
    ("closed PR without cause", Outcome("ci_failed", 3), (), {}, "unknown"),
    # what is not evidence
    (
        "a successful summary may talk about 429s",
        Outcome("stalled"),
        (),
        {"is_error": False, "result_text": "Added retries on 429 Too Many Requests"},
        "unknown",
    ),
    (
        "test names and compiler errors are not evidence",
        KILLED,
        (
            "FAILED tests/test_rate_limit.py::test_429_too_many_requests",
            "error: call of overloaded 'f(int)' is ambiguous",
            "FAILED tests/test_billing.py::test_quota - assert 401 == 200",
            "ERROR at line 429 in handler.py",
        ),
        {},
        "agent-error",
    ),
    (
        "claude cannot reach its API",
        KILLED,
        ("API Error: Connection error.",),
        {"is_error": True, "subtype": "error_during_execution"},
        "network",
    ),
    (
        "codex stream dropped",
        KILLED,
        (
            "ERROR: stream disconnected before completion: error sending request for url "
            "(https://api.openai.com/v1/responses)",
        ),
        {},
        "network",
    ),
    ("name resolution", KILLED, ("fatal: Could not resolve host: github.com",), {}, "network"),
    (
        "node fetch",
        TIMED_OUT,
        ("TypeError: fetch failed (ECONNREFUSED 127.0.0.1:443)",),
        {},
        "network",
    ),
    ("payment required", KILLED, ("Error: 402 Payment Required",), {}, "quota-exhausted"),
    ("credit limit", KILLED, ("API Error: Credit limit exceeded",), {}, "quota-exhausted"),
    (
        "quota beats network when both appear",
        KILLED,
        ("ECONNRESET while retrying", "insufficient_quota"),
        {},
        "quota-exhausted",
    ),
]


@pytest.mark.parametrize(
    ("outcome", "tail", "report", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_classify(
    outcome: Outcome, tail: tuple[str, ...], report: dict[str, object], expected: str
) -> None:
    assert classify(outcome, tail, report) == expected


@pytest.mark.parametrize("name", ["shipped", "race_abandoned"])
def test_success_has_no_cause(name: str) -> None:
    assert classify(Outcome(name, 1, cause="agent-error"), (CLAUDE_429,), {}) == ""


def test_every_loop_cause_is_a_known_class() -> None:
    for cause in ("agent-error", "timeout", "interrupted", "checks-failed", "spawn-failed"):
        assert cause in CAUSES
    assert {case[-1] for case in CASES} <= set(CAUSES)


def test_nested_report_errors_are_searched() -> None:
    report = {"errors": [{"message": "insufficient_quota"}]}
    assert evidence((), report) == "quota-exhausted"


def test_reflection_carries_the_classified_cause_in_notes_and_field() -> None:
    r = reflection.build(
        gap_id="API-1",
        effort="s",
        backend="codex",
        outcome=KILLED,
        duration_s=12.5,
        parallel_siblings=0,
        tail=[CODEX_429],
    )
    assert r.cause == "rate-limited"
    assert r.notes.startswith("backend=codex cause:rate-limited reason: exit code 1\n")
    assert "notes=backend=codex cause:rate-limited" in reflection.directive(r)


def test_success_reflection_has_no_cause_in_notes() -> None:
    r = reflection.build(
        gap_id="API-2",
        effort="s",
        backend="claude",
        outcome=Outcome("shipped", 4),
        duration_s=3,
        parallel_siblings=1,
    )
    assert (r.cause, r.notes) == ("", "backend=claude")
