"""Secrets never reach a sink: token shapes, secret-named environment values, and every
free-text field of a reflection. The keys below are fake, shaped like the real ones."""

from __future__ import annotations

import pytest

from pytest_chump.core.redact import MASK, redact, secret_values

ANTHROPIC = "sk-ant-api03-" + "Ab1_" * 20
OPENAI = "sk-proj-" + "Xy9-" * 12
OPENAI_OLD = "sk-" + "a1B2" * 12
GITHUB = "ghp_" + "Z" * 36
GITHUB_OAUTH = "gho_" + "q1" * 18
GITHUB_PAT = "github_pat_11ABCDEFG0" + "x" * 60
SLACK = "xoxb-1234567890-0987654321-" + "s" * 24
AWS = "AKIA" + "ABCDEFGHIJKLMNOP"
GOOGLE = "AIza" + "Sy" + "0" * 33

SHAPES = [ANTHROPIC, OPENAI, OPENAI_OLD, GITHUB, GITHUB_OAUTH, GITHUB_PAT, SLACK, AWS, GOOGLE]


@pytest.mark.parametrize("token", SHAPES, ids=lambda t: t[:8])
def test_token_shapes_are_masked(token: str) -> None:
    text = f"ERROR request failed with key {token} (retrying)"
    assert redact(text, secrets=()) == f"ERROR request failed with key {MASK} (retrying)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi_jkl012", f"Authorization: Bearer {MASK}"),
        ("authorization: Basic dXNlcjpwYXNzd29yZA==", f"authorization: Basic {MASK}"),
        ("curl -H 'x-api-key: 0123456789abcdef'", f"curl -H 'x-api-key: {MASK}'"),
        ("api_key=0123456789abcdef rest", f"api_key={MASK} rest"),
        ('{"api_key": "0123456789abcdef"}', f'{{"api_key": "{MASK}"}}'),
        ("MY_SERVICE_TOKEN=zzzzzzzzzzzz", f"MY_SERVICE_TOKEN={MASK}"),
        ("client_secret: s3cr3t-v4lue", f"client_secret: {MASK}"),
        ("password=hunter2", f"password={MASK}"),
        ("https://bob:hunter2@git.example/x.git", f"https://bob:{MASK}@git.example/x.git"),
    ],
)
def test_assignments_keep_the_name_and_mask_the_value(text: str, expected: str) -> None:
    assert redact(text, secrets=()) == expected


@pytest.mark.parametrize(
    "text",
    [
        "branch chump/task-management-refactor-of-the-picker",
        "max_tokens=4096 Tokens: 9.8k sent, 213 received",
        "FAILED tests/test_auth.py::test_token_refresh - assert 401 == 200",
        "ERROR: desk-booking-service-unavailable-for-now",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text, secrets=()) == text


def test_redaction_is_idempotent() -> None:
    once = redact(f"Authorization: Bearer {OPENAI} api_key={GITHUB}", secrets=())
    assert redact(once, secrets=()) == once
    assert OPENAI not in once
    assert GITHUB not in once


def test_secret_named_environment_values() -> None:
    env = {
        "ANTHROPIC_API_KEY": "plain-looking-value-1",
        "GH_TOKEN": "another-value-22",
        "WEBHOOK_SECRET": "third-value-333",
        "DB_PASSWORD_FILE": "/run/pw-file",
        "MY_PAT": "pat-value-4444",
        "HOME": "/home/someone",
        "SHORT_KEY": "abc",
    }
    values = secret_values(env)
    assert values == sorted(values, key=len, reverse=True)
    assert set(values) == {
        "plain-looking-value-1",
        "another-value-22",
        "third-value-333",
        "/run/pw-file",
        "pat-value-4444",
    }
    text = "sent plain-looking-value-1 and another-value-22 from /home/someone with abc"
    assert redact(text, values) == f"sent {MASK} and {MASK} from /home/someone with abc"


def test_redact_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOM_SERVICE_KEY", "not-shaped-like-anything")
    assert redact("oops not-shaped-like-anything leaked") == f"oops {MASK} leaked"
