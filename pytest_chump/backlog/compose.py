"""Reading, slow and general: PyYAML's C composer gives a node tree to walk.

yaml is imported on first use only: importing the backlog package must stay cheap.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pytest_chump.backlog.tagged import (
    LIST,
    MAP,
    STR,
    WANTED,
    Emit,
    Flaw,
    Value,
    describe,
    plain_tag,
)

Node = Any  # a yaml.nodes node: .id is "scalar", "sequence" or "mapping"
_EMPTY = "file: is empty (expected a mapping with a 'gaps:' list)"


@cache
def _loader() -> type:
    """The fastest safe loader, with a leaner implicit-tag resolver (same tags as PyYAML's)."""
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    defaults = {
        yaml.ScalarNode: base.DEFAULT_SCALAR_TAG,
        yaml.SequenceNode: base.DEFAULT_SEQUENCE_TAG,
        yaml.MappingNode: base.DEFAULT_MAPPING_TAG,
    }

    def resolve(self: object, kind: type, value: str, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return plain_tag(value)
        return defaults[kind]

    return type("_BacklogLoader", (base,), {"resolve": resolve})


def compose_text(text: str) -> tuple[Node | None, Flaw | None]:
    """The single document's node tree, or the syntax error."""
    import yaml

    try:
        return yaml.compose(text, Loader=_loader()), None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        words = " ".join(str(exc.problem or "invalid YAML").split())
        if exc.context:
            words += f" ({' '.join(exc.context.split())})"
        return None, ((mark.line + 1) if mark else 1, f"yaml: {words}")
    except yaml.reader.ReaderError as exc:
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        where = text.find(char)
        line = text.count("\n", 0, where) + 1 if where >= 0 else 1
        return None, (line, f"yaml: {exc.reason} (character {ord(char):#06x})")
    except yaml.YAMLError as exc:
        return None, (1, f"yaml: {' '.join(str(exc).split())}")


def read_tree(text: str, emit: Emit, loose: bool = False) -> list[Flaw]:
    """Emit every entry of the composed ``gaps:`` list; return problems that prevent it.

    ``loose`` (a file of a backlog directory): the top level may also be a list of gaps, or
    one gap's mapping (a mapping without ``gaps:``).
    """
    root, error = compose_text(text)
    if error is not None or root is None:
        return [error or (1, _EMPTY)]
    line = root.start_mark.line + 1
    if loose and root.id == "sequence":
        return _emit_all(root, emit)
    if root.id != "mapping":
        got = describe(_leaf(root))
        wanted = "a list of gaps or a mapping" if loose else "a mapping with a 'gaps:' list"
        return [(line, f"gaps: top level must be {wanted}, got {got}")]
    found = gaps_nodes(root)
    if not found and loose:
        emit(_entry_value(root))
        return []
    if not found:
        return [(line, "gaps: missing (the top level needs a 'gaps:' list)")]
    if found[-1].id != "sequence":
        gaps = _leaf(found[-1])
        return [(gaps[2], f"gaps: must be a list, got {describe(gaps)}")]
    return _emit_all(found[-1], emit)


def _emit_all(sequence: Node, emit: Emit) -> list[Flaw]:
    for node in sequence.value:
        emit(_entry_value(node))
    return []


def gaps_nodes(root: Node) -> list[Node]:
    """The value nodes of every ``gaps`` string key of a mapping node, in order."""
    return [value for key, value in root.value if _is_str_node(key) and key.value == "gaps"]


def _is_str_node(node: Node) -> bool:
    return node.id == "scalar" and node.tag == STR


def _leaf(node: Node, line: int = 0) -> Value:
    line = line or node.start_mark.line + 1
    if node.id == "scalar":
        return (node.tag, node.value, line)
    return (LIST if node.id == "sequence" else MAP, None, line)


def _entry_value(node: Node) -> Value:
    if node.id != "mapping":
        return _leaf(node)
    fields = {}
    for key, value in node.value:
        if key.id == "scalar" and key.value in WANTED:
            line = key.start_mark.line + 1
            items = [_leaf(item) for item in value.value] if value.id == "sequence" else None
            fields[key.value] = _leaf(value, line) if items is None else (LIST, items, line)
    return (MAP, fields, node.start_mark.line + 1)
