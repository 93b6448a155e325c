"""Routing: which spawner (and model) runs a gap, from a table of candidates and stored outcomes.

The table narrows the choice to arms that suit a kind of gap; the router then learns among
them from ``routing_outcomes`` so that arms that ship more get more of the work.

The table is ``[tool.chump.routing]`` in pyproject.toml or, when that is empty,
``<repo>/.chump/routing.yaml`` (same keys), else one arm: the configured ``spawner``::

    [tool.chump.routing]
    rules = [
      { match = { priority = ["P0", "P1"], effort = ["l", "xl"] }, arms = [
          { spawner = "claude", model = "opus" }, { spawner = "codex" } ] },
      { match = { prefix = ["INFRA-"] }, arms = [{ spawner = "codex" }] },
    ]
    default = [{ spawner = "claude" }]

The first rule whose ``match`` fits the gap gives the candidate arms, in preference order;
no rule fits -> ``default``. Every ``match`` key is optional (absent = any) and holds a list
(or one string): ``priority`` (P0-P4), ``effort`` (xs-xl), ``prefix`` (the id starts with it,
case-sensitive). An arm is ``spawner`` plus an optional ``model``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from pytest_chump.core.model import SUCCESS_OUTCOMES, Gap
from pytest_chump.core.records import Arm, ArmStats
from pytest_chump.learn.routing_table import (
    ROUTING_YAML,
    KeyPath,
    RoutingTable,
    Rule,
    Source,
    load_table,
    parse_table,
)
from pytest_chump.state.store import Store

if TYPE_CHECKING:
    import random

    import pluggy

    from pytest_chump.core.config import Settings


class Wired(Protocol):
    """What routing needs of the caller's set-up (the loop's ``App`` is one)."""

    settings: Settings
    pm: pluggy.PluginManager


__all__ = [
    "ROUTING_YAML",
    "KeyPath",
    "RoutingTable",
    "Rule",
    "Source",
    "arm_stats",
    "candidates",
    "cascade",
    "choose_arm",
    "connection_of",
    "load_table",
    "overall_stats",
    "parse_table",
    "posterior_mean",
    "posterior_means",
    "thompson",
]


def candidates(table: RoutingTable, gap: Gap) -> list[Arm]:
    """The arms of the first rule matching ``gap`` (else the default), in preference order."""
    for rule in table.rules:
        if rule.matches(gap):
            return list(rule.arms)
    return list(table.default)


# --- stats and strategies --------------------------------------------------------------


def connection_of(source: Store | sqlite3.Connection) -> sqlite3.Connection:
    return source.conn if isinstance(source, Store) else source


def _class_counts(conn: sqlite3.Connection) -> dict[tuple[str, str, str], ArmStats]:
    """(backend, model, task class) -> outcomes, over every stored routing outcome."""
    rows = conn.execute(  # grouped in the order of an index: no per-row expression
        "SELECT backend, model, task_class, outcome, COUNT(*) FROM routing_outcomes "
        "GROUP BY backend, model, task_class, outcome"
    ).fetchall()
    counts: dict[tuple[str, str, str], list[int]] = {}
    for backend, model, task_class, outcome, n in rows:
        tally = counts.setdefault((backend, model, task_class), [0, 0])
        tally[0 if outcome in SUCCESS_OUTCOMES else 1] += int(n)
    return {key: ArmStats(s, f) for key, (s, f) in counts.items()}


def _pooled(counts: Mapping[tuple[str, str, str], ArmStats]) -> dict[Arm, ArmStats]:
    pooled: dict[Arm, ArmStats] = {}
    for (backend, model, _), s in sorted(counts.items()):
        arm = Arm(backend, model or None)
        old = pooled.get(arm, ArmStats())
        pooled[arm] = ArmStats(old.successes + s.successes, old.failures + s.failures)
    return pooled


def overall_stats(source: Store | sqlite3.Connection) -> dict[Arm, ArmStats]:
    """Outcomes per arm over every task class, for every arm with stored outcomes."""
    return _pooled(_class_counts(connection_of(source)))


def arm_stats(
    source: Store | sqlite3.Connection, gap: Gap, arms: Sequence[Arm]
) -> dict[Arm, ArmStats]:
    """Stored outcomes of each arm for gaps like ``gap``: successes are shipped/race_abandoned.

    Back-off, decided per arm: rows of the gap's task class (its domain) when the arm has any,
    else all of the arm's rows. Class rows say most about this gap, but a class the arm never
    ran says nothing; its overall record is a better guess than a flat prior and lets a new
    domain start from what the arm does elsewhere. An arm without ``model`` matches rows whose
    model is empty.
    """
    counts = _class_counts(connection_of(source))
    pooled = _pooled(counts)
    return {
        arm: counts.get((arm.spawner, arm.model or "", gap.domain)) or pooled.get(arm, ArmStats())
        for arm in arms
    }


def posterior_mean(stats: ArmStats) -> float:
    """Mean of Beta(successes + 1, failures + 1): the arm's expected ship rate."""
    return (stats.successes + 1) / (stats.successes + stats.failures + 2)


def posterior_means(arms: Sequence[Arm], stats: Mapping[Arm, ArmStats]) -> dict[str, float]:
    return {arm.label: posterior_mean(stats.get(arm, ArmStats())) for arm in arms}


def thompson(
    candidates: Sequence[Arm], stats: Mapping[Arm, ArmStats], rng: random.Random
) -> tuple[Arm, dict[str, float]]:
    """Draw from each arm's Beta(s + 1, f + 1) and take the largest (ties: earlier candidate)."""
    if not candidates:
        raise ValueError("thompson() needs at least one candidate arm")
    best, best_draw = candidates[0], -1.0
    for arm in candidates:
        s = stats.get(arm, ArmStats())
        draw = rng.betavariate(s.successes + 1, s.failures + 1)
        if draw > best_draw:
            best, best_draw = arm, draw
    return best, posterior_means(candidates, stats)


def cascade(candidates: Sequence[Arm]) -> Arm:
    """The static strategy: always the first (most preferred) candidate."""
    return candidates[0]


def choose_arm(
    app: Wired,
    store: Store | sqlite3.Connection,
    gap: Gap,
    table: RoutingTable | None = None,
    warn: Callable[[str], None] | None = None,
    closed: Collection[str] = (),
) -> tuple[Arm, dict[str, float]] | None:
    """Ask the ``chump_route`` hook for the arm of ``gap``; return it and each posterior mean.

    A hook answering None means the first candidate; an arm outside the candidates is a
    plugin bug, reported through ``warn`` (default: a ``RuntimeWarning``) and replaced likewise.
    Arms whose label is in ``closed`` (open circuits) are no candidates; None when no arm is
    left.
    """
    arms = candidates(table if table is not None else load_table(app.settings), gap)
    arms = [arm for arm in arms if arm.label not in closed]
    if not arms:
        return None
    stats = arm_stats(store, gap, arms)
    chosen = app.pm.hook.chump_route(gap=gap, candidates=tuple(arms), stats=stats)
    if chosen is not None and chosen not in arms:
        (warn or _runtime_warning)(f"chump_route returned {chosen!r}, not a candidate arm")
        chosen = None
    return chosen or arms[0], posterior_means(arms, stats)


def _runtime_warning(message: str) -> None:
    import warnings

    warnings.warn(message, RuntimeWarning, stacklevel=3)
