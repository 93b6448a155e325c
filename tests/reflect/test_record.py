"""The reflection record: its directive string (a contract other tools parse), the outcome
class of every outcome, and what an agent's report adds to the record and its notes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pytest_chump.core.model import OUTCOMES
from pytest_chump.core.records import Outcome
from pytest_chump.core.redact import MASK
from pytest_chump.reflect import record as reflection
from tests.core.test_redact import ANTHROPIC, GITHUB, OPENAI

REPORT = {"total_cost_usd": 1.25, "num_turns": 7, "model": "claude-x"}


def test_directive_of_a_shipped_reflection_is_the_full_reference_string() -> None:
    r = reflection.build(
        gap_id="INFRA-7",
        effort="m",
        backend="script",
        outcome=Outcome("shipped", pr_number=42),
        duration_s=93.9,
        parallel_siblings=2,
        tail=["WARN: flaky test retried", "ERROR: second line never in the directive"],
    )
    assert reflection.directive(r) == (
        "dispatched gap=INFRA-7 effort=m domain=infra outcome=shipped duration_s=93 "
        "parallel_siblings=2 pr_number=Some(42) notes=backend=script"
    )


def test_directive_of_a_killed_reflection_is_the_full_reference_string() -> None:
    r = reflection.build(
        gap_id="API-12",
        effort="xs",
        backend="claude",
        outcome=Outcome("killed", reason="soft-deadline exceeded (20m)", cause="timeout"),
        duration_s=1200.0,
        parallel_siblings=0,
        tail=["ERROR: still compiling"],
    )
    assert reflection.directive(r) == (
        "dispatched gap=API-12 effort=xs domain=api outcome=killed duration_s=1200 "
        "parallel_siblings=0 pr_number=None "
        "notes=backend=claude cause:timeout reason: soft-deadline exceeded (20m)"
    )
    assert r.notes.splitlines()[1:] == ["ERROR: still compiling"]
    assert r.kill_reason == "soft-deadline exceeded (20m)"


def test_directive_of_an_id_without_prefix_has_unknown_domain_and_pr_zero_is_some() -> None:
    r = reflection.build(
        gap_id="solo",
        effort="s",
        backend="fake",
        outcome=Outcome("ci_failed", pr_number=0, cause="tests-failed"),
        duration_s=0.4,
        parallel_siblings=1,
    )
    assert reflection.directive(r) == (
        "dispatched gap=solo effort=s domain=unknown outcome=ci_failed duration_s=0 "
        "parallel_siblings=1 pr_number=Some(0) notes=backend=fake cause:tests-failed"
    )


EXPECTED_CLASS = {
    "shipped": "success",
    "race_abandoned": "success",
    "ci_failed": "failure",
    "stalled": "failure",
    "killed": "failure",
}


def test_every_outcome_has_an_expected_class() -> None:
    assert set(EXPECTED_CLASS) == set(OUTCOMES)


@pytest.mark.parametrize(("outcome", "expected"), sorted(EXPECTED_CLASS.items()))
def test_outcome_class(outcome: str, expected: str) -> None:
    assert reflection.outcome_class(outcome) == expected
    r = reflection.build(
        gap_id="CLS-1",
        effort="s",
        backend="fake",
        outcome=Outcome(outcome),
        duration_s=1,
        parallel_siblings=0,
    )
    assert reflection.exported(r, 0.0)["outcome_class"] == expected
    assert (" cause:" in r.notes) is (expected == "failure")


def test_report_puts_cost_turns_model_and_exit_code_on_a_success() -> None:
    r = reflection.build(
        gap_id="REP-1",
        effort="s",
        backend="claude",
        outcome=Outcome("shipped", pr_number=5),
        duration_s=10,
        parallel_siblings=0,
        report=REPORT,
        exit_code=0,
    )
    assert (r.cost_usd, r.turns, r.model, r.exit_code) == (1.25, 7, "claude-x", 0)
    assert r.notes == "backend=claude"
    assert r.cause == ""


@pytest.mark.parametrize(
    ("outcome", "cause"),
    [
        (Outcome("ci_failed", pr_number=9, cause="tests-failed"), "tests-failed"),
        (Outcome("stalled", reason="no output for 10m", cause="timeout"), "timeout"),
        (Outcome("killed", reason="exit code 1"), "unknown"),
    ],
    ids=["ci_failed", "stalled", "killed"],
)
def test_report_on_a_failure_and_notes_name_backend_then_cause(
    outcome: Outcome, cause: str
) -> None:
    r = reflection.build(
        gap_id="REP-2",
        effort="l",
        backend="codex",
        outcome=outcome,
        duration_s=3,
        parallel_siblings=1,
        report=REPORT,
        exit_code=1,
    )
    assert (r.cost_usd, r.turns, r.model, r.exit_code) == (1.25, 7, "claude-x", 1)
    assert r.cause == cause
    assert r.notes.startswith(f"backend=codex cause:{cause}")
    assert reflection.directive(r).endswith(f" notes={r.notes.splitlines()[0]}")


def test_explicit_model_wins_and_a_malformed_report_is_ignored() -> None:
    r = reflection.build(
        gap_id="REP-3",
        effort="s",
        backend="claude",
        outcome=Outcome("shipped"),
        duration_s=1,
        parallel_siblings=0,
        report={"total_cost_usd": "lots", "num_turns": 7.5, "model": "claude-x"},
        model="claude-y",
    )
    assert (r.cost_usd, r.turns, r.model, r.exit_code) == (None, None, "claude-y", None)


def test_every_free_text_field_of_a_reflection_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VENDOR_TOKEN", "vendor-secret-value")
    outcome = Outcome("killed", reason=f"agent error: bad key {ANTHROPIC}", cause="agent-error")
    r = reflection.build(
        gap_id="SEC-1",
        effort="s",
        backend="claude",
        outcome=outcome,
        duration_s=1,
        parallel_siblings=0,
        tail=[f"ERROR Authorization: Bearer {OPENAI}", "WARN vendor-secret-value rejected"],
        failing_checks=[f"deploy ({GITHUB})"],
    )
    record = json.dumps(dataclasses.asdict(r)) + reflection.directive(r)
    for secret in (ANTHROPIC, OPENAI, GITHUB, "vendor-secret-value"):
        assert secret not in record
    assert r.kill_reason == f"agent error: bad key {MASK}"
    assert r.failing_checks == (f"deploy ({MASK})",)
    assert r.notes.count(MASK) == 3



def test_records_are_bounded_with_a_visible_marker_and_redacted_before_cutting() -> None:
    secret = "ghp_" + "S" * 36
    huge = "ERROR " + "x" * 2030 + secret + "y" * 4_000_000  # the token straddles the cut
    r = reflection.build(
        gap_id="BIG-1",
        effort="s",
        backend="claude",
        outcome=Outcome("killed", reason="agent error: " + "r" * 100_000, cause="agent-error"),
        duration_s=1,
        parallel_siblings=0,
        tail=[huge] * 20,
    )
    assert len(r.notes) <= 16384
    assert "more characters cut]" in r.notes
    assert all(len(line) <= 2048 for line in r.notes.splitlines())
    assert "ghp_" not in r.notes  # no half of a token survives the cut
    assert len(r.kill_reason) <= 2048
