"""The monitor's pure decision function, table-driven: every transition of the state machine."""

from __future__ import annotations

import pytest

from pytest_chump.core.protocols import PrStatus
from pytest_chump.loop.decide import FINISH, STOP, WAIT, Observation, decide, next_due

SOFT = 100.0
MERGED = PrStatus(7, "MERGED")
CLOSED = PrStatus(8, "CLOSED")
OPEN = PrStatus(9, "OPEN")
OPEN_RED = PrStatus(9, "OPEN", checks="failing", failing_checks=("lint", "tests"))


def obs(elapsed: float = 10, **kw: object) -> Observation:
    return Observation(elapsed=elapsed, soft_deadline=SOFT, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("o", "action", "outcome", "pr", "cause"),
    [
        # a PR decides first
        (obs(pr=MERGED), FINISH, "shipped", 7, ""),
        (obs(pr=MERGED, exit_code=1), FINISH, "shipped", 7, ""),
        (obs(pr=CLOSED), FINISH, "ci_failed", 8, ""),
        (obs(pr=OPEN), WAIT, None, None, ""),
        (obs(elapsed=10 * SOFT, pr=OPEN), WAIT, None, None, ""),  # an open PR stops the clock
        (obs(pr=OPEN_RED), WAIT, None, None, ""),  # agent still working: it may fix them
        (obs(pr=OPEN_RED, exit_code=0), FINISH, "ci_failed", 9, "checks-failed"),
        # races lost: stop the agent, success for the learning loop
        (obs(pr=PrStatus(None, "OPEN", superseded_by=44)), STOP, "race_abandoned", 44, ""),
        (obs(pr=PrStatus(None, "CLOSED", superseded_by=44)), STOP, "race_abandoned", 44, ""),
        (obs(done_elsewhere=True), STOP, "race_abandoned", None, ""),
        (obs(pr=MERGED, done_elsewhere=True), FINISH, "shipped", 7, ""),
        # a provider says why a PR failed
        (
            obs(pr=PrStatus(None, "CLOSED", cause="merge-conflict", detail="conflict in a.py")),
            FINISH,
            "ci_failed",
            None,
            "merge-conflict",
        ),
        # no PR: the agent's exit
        (obs(exit_code=1), FINISH, "killed", None, "agent-error"),
        (obs(exit_code=-9), FINISH, "killed", None, "agent-error"),
        (obs(exit_code=0, agent_error="error_max_turns"), FINISH, "killed", None, "agent-error"),
        (obs(exit_code=0, exited_for=5), WAIT, None, None, ""),
        (obs(exit_code=0, exited_for=60), FINISH, "stalled", None, ""),
        (obs(elapsed=SOFT + 1, exit_code=0, exited_for=1), FINISH, "stalled", None, ""),
        # past the soft deadline, the PR it may have opened last is looked for first
        (
            obs(elapsed=SOFT + 1, exit_code=0, exited_for=1, asked_since_exit=False),
            WAIT,
            None,
            None,
            "",
        ),
        (
            obs(elapsed=SOFT + 1, exit_code=0, exited_for=60, asked_since_exit=False),
            FINISH,
            "stalled",
            None,
            "",
        ),
        # no PR, still running: the deadline ladder
        (obs(elapsed=SOFT), WAIT, None, None, ""),
        (obs(elapsed=SOFT + 1), WAIT, None, None, ""),
        (obs(elapsed=2 * SOFT), WAIT, None, None, ""),
        (obs(elapsed=2 * SOFT + 1), STOP, "killed", None, "timeout"),
    ],
)
def test_decide(
    o: Observation, action: str, outcome: str | None, pr: int | None, cause: str
) -> None:
    d = decide(o)
    assert d.action == action
    assert (d.outcome.name if d.outcome else None) == outcome
    if d.outcome:
        assert d.outcome.pr_number == pr
        assert d.outcome.cause == cause


def test_stalled_flag_is_raised_past_the_soft_deadline_only() -> None:
    assert not decide(obs(elapsed=SOFT)).stalled
    assert decide(obs(elapsed=SOFT + 0.5)).stalled


def test_reasons_are_reference_compatible() -> None:
    assert decide(obs(exit_code=3)).outcome.reason == "exit code 3"  # type: ignore[union-attr]
    stop = decide(obs(elapsed=2 * SOFT + 1)).outcome
    assert stop is not None
    assert stop.reason.startswith("soft-deadline exceeded")
    red = decide(obs(pr=OPEN_RED, exit_code=0)).outcome
    assert red is not None
    assert red.reason == "checks failed: lint, tests"


@pytest.mark.parametrize(
    ("o", "due"),
    [
        (obs(elapsed=10), SOFT - 10),
        (obs(elapsed=SOFT + 10), SOFT - 10),
        (obs(elapsed=3 * SOFT), 0.0),
        (obs(pr=OPEN), None),
        (obs(exit_code=0, exited_for=20), 40.0),
    ],
)
def test_next_due(o: Observation, due: float | None) -> None:
    assert next_due(o) == due
