"""The monitor's state machine as a pure function: what happens to one dispatch now.

Inputs are what the loop observed (PR state, agent exit, elapsed time, deadlines); the
result says wait, finish with an outcome, or stop the agent (TERM, grace, KILL) and then
finish. No I/O here, so every transition is tested table-driven.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_chump.core.protocols import PrStatus
from pytest_chump.core.records import Outcome

WAIT, FINISH, STOP = "wait", "finish", "stop"


@dataclass(frozen=True, slots=True)
class Observation:
    """One dispatch as the loop sees it at one instant (times in seconds)."""

    elapsed: float
    soft_deadline: float
    exit_code: int | None = None  # None while the agent runs
    exited_for: float = 0.0  # how long ago it exited (when exit_code is not None)
    exit_grace: float = 60.0
    agent_error: str = ""  # the agent's own report of failure (e.g. claude is_error)
    pr: PrStatus | None = None
    done_elsewhere: bool = False  # the gap became done on the base branch by another change
    asked_since_exit: bool = True  # the PR provider answered after the agent exited
    ended_by: str = ""  # a cause outside the agent its handle reported (``worker-lost``)
    ended_why: str = ""  # the handle's reason for it


@dataclass(frozen=True, slots=True)
class Decision:
    action: str  # WAIT, FINISH or STOP
    outcome: Outcome | None = None
    stalled: bool = False  # past the soft deadline, still running: flagged, not killed


def decide(o: Observation) -> Decision:
    """The next step for one dispatch.

    A merged PR ships. A race lost (another PR for the gap merged, or the gap became done
    on the base by another change) stops the agent as ``race_abandoned``. An agent whose
    engine ended it for a reason outside it (its Ray node died: ``ended_by``) is ``killed``
    with that cause, whatever its PR says (the gap is retried). Then the PR
    decides: CLOSED fails, OPEN with failed checks (or a review requesting changes) fails
    once the agent has finished, any other OPEN PR stops the deadline clock. Without a PR: a
    non-zero exit or an agent-reported error is ``killed``; an agent that exited 0 is ``stalled``
    after ``exit_grace`` (or, past the soft deadline, once the provider was asked about its PR
    since it exited: agents often open the PR as their last act); a running agent is flagged
    stalled past the soft deadline and stopped past twice it.
    """
    if o.pr is not None and o.pr.state.upper() == "MERGED":
        return _finish("shipped", o.pr.number)
    if o.pr is not None and o.pr.superseded_by is not None:
        reason = f"another pull request for the gap merged (#{o.pr.superseded_by})"
        return Decision(STOP, Outcome("race_abandoned", o.pr.superseded_by, reason))
    if o.done_elsewhere:
        return Decision(STOP, Outcome("race_abandoned", reason="gap marked done on the base"))
    if o.exit_code is not None and o.ended_by:
        return _finish("killed", reason=o.ended_why or o.ended_by, cause=o.ended_by)
    if o.pr is not None:
        return _with_pr(o, o.pr)
    if o.exit_code is not None and o.exit_code != 0:
        return _finish("killed", reason=f"exit code {o.exit_code}", cause="agent-error")
    if o.exit_code is not None and o.agent_error:
        return _finish("killed", reason=f"agent error: {o.agent_error}", cause="agent-error")
    if o.exit_code is not None:
        late = o.elapsed > o.soft_deadline and o.asked_since_exit
        if o.exited_for >= o.exit_grace or late:
            return _finish("stalled", reason="agent exited without a pull request")
        return Decision(WAIT)
    if o.elapsed > 2 * o.soft_deadline:
        reason = f"soft-deadline exceeded ({o.soft_deadline:g}s x 2)"
        return Decision(STOP, Outcome("killed", reason=reason, cause="timeout"))
    return Decision(WAIT, stalled=o.elapsed > o.soft_deadline)


def _with_pr(o: Observation, pr: PrStatus) -> Decision:
    if pr.state.upper() == "CLOSED":
        reason = pr.detail or "pull request closed unmerged"
        return _finish("ci_failed", pr.number, reason=reason, cause=pr.cause)
    if pr.checks == "failing" and o.exit_code is not None:
        failing = ", ".join(pr.failing_checks) or "unknown checks"
        reason = f"checks failed: {failing}"
        return Decision(
            FINISH, Outcome("ci_failed", pr.number, reason, "checks-failed", pr.failing_checks)
        )
    if pr.review == "changes-requested" and o.exit_code is not None:
        reason = "a review requested changes"
        return Decision(FINISH, Outcome("ci_failed", pr.number, reason, "changes-requested"))
    return Decision(WAIT)


def _finish(name: str, pr_number: int | None = None, reason: str = "", cause: str = "") -> Decision:
    return Decision(FINISH, Outcome(name, pr_number, reason, cause))


def next_due(o: Observation) -> float | None:
    """Seconds until this dispatch's decision could change by time alone (None: never)."""
    if o.pr is not None:
        return None
    if o.exit_code is not None:
        return max(0.0, min(o.exit_grace - o.exited_for, o.soft_deadline - o.elapsed))
    marks = [m - o.elapsed for m in (o.soft_deadline, 2 * o.soft_deadline) if m >= o.elapsed]
    return min(marks) if marks else 0.0
