"""The routing table: reading it (pyproject or ``.chump/routing.yaml``) and validating it.

The table's format is described in :mod:`pytest_chump.learn.routing`, which picks among its arms.
A bad entry raises ``UsageError`` naming it: ``file:line: key`` or ``label key``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_chump.core.errors import UsageError
from pytest_chump.core.model import EFFORTS, PRIORITIES, Gap
from pytest_chump.core.records import Arm

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_chump.core.config import Settings

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
