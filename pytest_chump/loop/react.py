"""How the loop reacts to an outcome: retry with what failed, back off, hold for a human, or
open the circuit of a broken backend. Pure and table-tested; the finisher carries it out.

- ``ci_failed`` for checks, tests, a merge conflict or requested changes: a new attempt of the
  same gap on the same branch, its prompt saying what failed, up to ``retries`` times; after
  the last the gap is held (``needs-human``) until ``chump retry``.
- A rate limit, an overloaded API, no network or a lost worker (a Ray node died): a new
  attempt after ``retry_backoff`` * 2^(n-1) (at most ``retry_backoff_max``), up to
  ``retry_transient`` times in the chain.
- A retry interrupted (the operator stopped chump, or it died while starting the agent):
  the same attempt again, with the same feedback — an attempt is never lost.
- Bad credentials, an exhausted quota or a spawner that cannot start (binary missing): the
  arm's circuit opens for the run. Retrying would fail the same way.

Transient and circuit causes say nothing about how well the arm does the work: they are not
routing outcomes (``core.model.NEUTRAL_CAUSES``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_chump.core.model import (
    CIRCUIT_CAUSES,
    FEEDBACK_CAUSES,
    SUCCESS_OUTCOMES,
    TRANSIENT_CAUSES,
)

NONE, RETRY, NEEDS_HUMAN, CIRCUIT = "none", "retry", "needs-human", "circuit"
FEEDBACK, TRANSIENT, RESUME = "feedback", "transient", "resume"


@dataclass(frozen=True, slots=True)
class Chain:
    """Where a dispatch stands in its gap's chain of attempts."""

    attempt: int = 1
    feedback_n: int = 0  # retries after failed checks so far
    transient_n: int = 0  # retries after transient failures so far

    @classmethod
    def from_meta(cls, meta: dict[str, object]) -> Chain:
        raw = meta.get("chain")
        if not isinstance(raw, dict):
            return cls()
        values = {k: raw.get(k) for k in ("attempt", "feedback_n", "transient_n")}
        return cls(**{k: v for k, v in values.items() if isinstance(v, int)})

    def as_meta(self) -> dict[str, int]:
        return {
            "attempt": self.attempt,
            "feedback_n": self.feedback_n,
            "transient_n": self.transient_n,
        }


@dataclass(frozen=True, slots=True)
class Reaction:
    kind: str  # NONE, RETRY, NEEDS_HUMAN, CIRCUIT
    retry: str = ""  # FEEDBACK or TRANSIENT
    delay: float = 0.0
    chain: Chain | None = None  # the next attempt's place in the chain
    reason: str = ""


def backoff(n: int, base: float, cap: float) -> float:
    """Seconds before the n-th transient retry: ``base`` * 2^(n-1), at most ``cap``."""
    return min(base * 2 ** (n - 1), cap)


def react(
    outcome: str,
    cause: str,
    chain: Chain,
    *,
    retries: int,
    retry_transient: int,
    base: float,
    cap: float,
) -> Reaction:
    """What happens after a dispatch ended with ``outcome`` for ``cause``."""
    if outcome in SUCCESS_OUTCOMES:
        return Reaction(NONE)
    if cause == "interrupted" and chain.attempt > 1:  # a retry cut short: it is still owed
        return Reaction(RETRY, RESUME, 0.0, chain, cause)
    if cause in CIRCUIT_CAUSES:
        return Reaction(CIRCUIT, reason=cause)
    if outcome == "ci_failed" and cause in FEEDBACK_CAUSES:
        if chain.feedback_n >= retries:
            tries = chain.feedback_n + 1
            return Reaction(NEEDS_HUMAN, reason=f"{cause} after {tries} attempt(s)")
        nxt = Chain(chain.attempt + 1, chain.feedback_n + 1, chain.transient_n)
        return Reaction(RETRY, FEEDBACK, 0.0, nxt, cause)
    if cause in TRANSIENT_CAUSES and chain.transient_n < retry_transient:
        nxt = Chain(chain.attempt + 1, chain.feedback_n, chain.transient_n + 1)
        return Reaction(RETRY, TRANSIENT, backoff(nxt.transient_n, base, cap), nxt, cause)
    return Reaction(NONE)
