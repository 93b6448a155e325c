"""Budgets: what a run and a repository may spend, as agents report it (``budget_usd`` per
run, ``daily_budget_usd`` per UTC day for every run together). The spending is read from the
store, so a resumed run and the other orchestrators count the same dispatches."""

from __future__ import annotations

from datetime import UTC, datetime

from pytest_chump.core.config import Settings
from pytest_chump.state.store import Store


def budget_reached(store: Store, settings: Settings, run_started: float, owner: str) -> str:
    """Why nothing new may start ("" while both budgets last)."""
    if settings.budget_usd:
        spent = store.spent(run_started, owner)
        if spent >= settings.budget_usd:
            return f"run budget ${settings.budget_usd:g} reached (${spent:.2f} spent)"
    if settings.daily_budget_usd:
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        spent = store.spent(midnight.timestamp())
        if spent >= settings.daily_budget_usd:
            limit = settings.daily_budget_usd
            return f"daily budget ${limit:g} reached (${spent:.2f} spent today)"
    return ""
