"""What the store says about the next attempts, read once per refill: retries due now and
later, gaps held for a human, arms whose circuit is open."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_chump.state.rows import CircuitRow, RetryRow
from pytest_chump.state.store import Store


@dataclass(frozen=True)
class Attempts:
    due: dict[str, RetryRow]  # gap id -> its retry, due now: dispatch it even if tried already
    later: dict[str, RetryRow]  # gap id -> its retry, not yet due: not before then
    held: frozenset[str]  # gaps that need a human
    circuits: dict[str, CircuitRow]  # arm label -> open circuit

    @classmethod
    def read(cls, store: Store, now: float) -> Attempts:
        retries = store.retries()
        held = frozenset(store.holds())
        due = {g: r for g, r in retries.items() if r.not_before <= now and g not in held}
        later = {g: r for g, r in retries.items() if r.not_before > now and g not in held}
        return cls(due, later, held, store.circuits())

    def next_due(self) -> float | None:
        """When the earliest retry not yet due falls due (wall clock), if any."""
        return min((r.not_before for r in self.later.values()), default=None)
