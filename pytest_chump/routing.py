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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_chump.contracts import Arm, ArmStats
from pytest_chump.errors import UsageError
from pytest_chump.model import EFFORTS, PRIORITIES, Gap
from pytest_chump.reflection import SUCCESS_OUTCOMES
from pytest_chump.store import Store

if TYPE_CHECKING:
    import random
    from pathlib import Path

    from pytest_chump.app import App
    from pytest_chump.config import Settings

ROUTING_YAML = "routing.yaml"
KeyPath = tuple[str | int, ...]
_MATCH_KEYS: dict[str, tuple[str, ...] | None] = {
    "priority": PRIORITIES,
    "effort": EFFORTS,
    "prefix": None,
}


@dataclass(frozen=True, slots=True)
class Rule:
    """Arms for the gaps this rule matches; an empty criterion matches any gap."""

    arms: tuple[Arm, ...]
    priority: frozenset[str] = frozenset()
    effort: frozenset[str] = frozenset()
    prefix: tuple[str, ...] = ()

    def matches(self, gap: Gap) -> bool:
        return (
            (not self.priority or gap.priority in self.priority)
            and (not self.effort or gap.effort in self.effort)
            and (not self.prefix or gap.id.startswith(self.prefix))
        )


@dataclass(frozen=True, slots=True)
class RoutingTable:
    rules: tuple[Rule, ...]
    default: tuple[Arm, ...]


@dataclass(frozen=True)
class Source:
    """Where a table came from, to name the bad entry: ``file:line: key`` or ``label key``."""

    name: str
    lines: Mapping[KeyPath, int] = field(default_factory=dict)

    def where(self, path: KeyPath) -> str:
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return f"{self.name}:{self.lines[path[:n]]}: {dotted or '(top)'}"
        return f"{self.name} {dotted}".rstrip()


class _Problem(Exception):
    def __init__(self, path: KeyPath, message: str) -> None:
        super().__init__(message)
        self.path = path


# --- the table ------------------------------------------------------------------------


def load_table(settings: Settings) -> RoutingTable:
    """The routing table of ``settings`` (pyproject, else ``.chump/routing.yaml``, else built-in).

    Raises ``UsageError`` naming the bad entry. Load it once per run and pass it to
    :func:`choose_arm`, so a broken table fails before anything is dispatched.
    """
    fallback = Arm(settings.spawner)
    if settings.routing:
        where = f"{settings.repo_root / 'pyproject.toml'} [tool.chump.routing]"
        return parse_table(settings.routing, Source(where), fallback)
    path = settings.state_dir / ROUTING_YAML
    if path.is_file():
        data, lines = _read_yaml(path)
        return parse_table(data, Source(str(path), lines), fallback)
    return RoutingTable((), (fallback,))


def parse_table(data: object, source: Source, fallback: Arm) -> RoutingTable:
    """Validate raw table data; ``fallback`` is the default arm when ``default`` is absent."""
    try:
        top = _mapping({} if data is None else data, (), ("rules", "default"))
        rules = _items(top.get("rules", []), ("rules",), _rule)
        default = _arms(top["default"], ("default",)) if "default" in top else (fallback,)
    except _Problem as exc:
        raise UsageError(f"{source.where(exc.path)}: {exc}") from None
    return RoutingTable(tuple(rules), default)


def candidates(table: RoutingTable, gap: Gap) -> list[Arm]:
    """The arms of the first rule matching ``gap`` (else the default), in preference order."""
    for rule in table.rules:
        if rule.matches(gap):
            return list(rule.arms)
    return list(table.default)


def _read_yaml(path: Path) -> tuple[object, dict[KeyPath, int]]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return data, dict(_node_lines(node, ())) if node is not None else {}


def _node_lines(node: Any, path: KeyPath) -> Iterator[tuple[KeyPath, int]]:
    """(key path, 1-based line) of every node below ``node``, from the composed YAML."""
    yield path, node.start_mark.line + 1
    if isinstance(node.value, list):
        for i, item in enumerate(node.value):
            if isinstance(item, tuple):  # a mapping's (key node, value node)
                yield from _node_lines(item[1], (*path, str(item[0].value)))
            else:
                yield from _node_lines(item, (*path, i))


def _mapping(data: object, path: KeyPath, allowed: Sequence[str]) -> Mapping[str, object]:
    if not isinstance(data, Mapping):
        raise _Problem(path, f"must be a table, got {type(data).__name__}")
    for key in data:
        if key not in allowed:
            raise _Problem((*path, str(key)), f"unknown key (valid: {', '.join(allowed)})")
    return data


def _items(data: object, path: KeyPath, parse: Callable[[object, KeyPath], Any]) -> list[Any]:
    if not isinstance(data, list):
        raise _Problem(path, f"must be a list, got {type(data).__name__}")
    return [parse(item, (*path, i)) for i, item in enumerate(data)]


def _rule(data: object, path: KeyPath) -> Rule:
    rule = _mapping(data, path, ("match", "arms"))
    if "arms" not in rule:
        raise _Problem(path, "missing 'arms' (a list of { spawner, model })")
    match = _mapping(rule.get("match", {}), (*path, "match"), tuple(_MATCH_KEYS))
    words = {k: _words(v, (*path, "match", k), _MATCH_KEYS[k]) for k, v in match.items()}
    return Rule(
        arms=_arms(rule["arms"], (*path, "arms")),
        priority=frozenset(words.get("priority", ())),
        effort=frozenset(words.get("effort", ())),
        prefix=words.get("prefix", ()),
    )


def _words(data: object, path: KeyPath, valid: tuple[str, ...] | None) -> tuple[str, ...]:
    items = [data] if isinstance(data, str) else data
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise _Problem(path, f"must be a non-empty list of non-empty strings, got {data!r}")
    for item in items:
        if valid is not None and item not in valid:
            raise _Problem(path, f"unknown value {item!r} (valid: {', '.join(valid)})")
    return tuple(items)


def _arms(data: object, path: KeyPath) -> tuple[Arm, ...]:
    arms = _items(data, path, _arm)
    if not arms:
        raise _Problem(path, "must list at least one arm")
    for i, arm in enumerate(arms):
        if arm in arms[:i]:
            raise _Problem((*path, i), f"duplicate arm {arm.label!r}")
    return tuple(arms)


def _arm(data: object, path: KeyPath) -> Arm:
    arm = _mapping(data, path, ("spawner", "model"))
    if "spawner" not in arm:
        raise _Problem(path, "missing 'spawner'")
    model = _text(arm["model"], (*path, "model")) if "model" in arm else None
    return Arm(_text(arm["spawner"], (*path, "spawner")), model)


def _text(value: object, path: KeyPath) -> str:
    if not isinstance(value, str) or not value:
        raise _Problem(path, f"must be a non-empty string, got {value!r}")
    return value


# --- stats and strategies --------------------------------------------------------------


def connection_of(source: Store | sqlite3.Connection) -> sqlite3.Connection:
    return source.conn if isinstance(source, Store) else source


def _class_counts(conn: sqlite3.Connection) -> dict[tuple[str, str, str], ArmStats]:
    """(backend, model, task class) -> outcomes, over every stored routing outcome."""
    marks = ",".join("?" * len(SUCCESS_OUTCOMES))
    rows = conn.execute(
        f"SELECT backend, model, task_class, SUM(outcome IN ({marks})), "  # noqa: S608
        f"SUM(outcome NOT IN ({marks})) FROM routing_outcomes GROUP BY backend, model, task_class",
        (*sorted(SUCCESS_OUTCOMES), *sorted(SUCCESS_OUTCOMES)),
    ).fetchall()
    return {(b, m, c): ArmStats(int(s), int(f)) for b, m, c, s, f in rows}


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
    app: App,
    store: Store | sqlite3.Connection,
    gap: Gap,
    table: RoutingTable | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[Arm, dict[str, float]]:
    """Ask the ``chump_route`` hook for the arm of ``gap``; return it and each posterior mean.

    A hook answering None means the first candidate; an arm outside the candidates is a
    plugin bug, reported through ``warn`` (default: a ``RuntimeWarning``) and replaced likewise.
    """
    arms = candidates(table if table is not None else load_table(app.settings), gap)
    stats = arm_stats(store, gap, arms)
    chosen = app.pm.hook.chump_route(gap=gap, candidates=tuple(arms), stats=stats)
    if chosen is not None and chosen not in arms:
        (warn or _runtime_warning)(f"chump_route returned {chosen!r}, not a candidate arm")
        chosen = None
    return chosen or arms[0], posterior_means(arms, stats)


def _runtime_warning(message: str) -> None:
    import warnings

    warnings.warn(message, RuntimeWarning, stacklevel=3)
