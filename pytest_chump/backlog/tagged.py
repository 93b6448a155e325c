"""Tagged values: the form both readers give the checker, and their "got ..." wording.

A value is ``(tag, text or items or fields, 1-based line)``. Scalars carry their YAML tag;
collections carry a marker instead (no YAML tag contains a space).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

TAG = "tag:yaml.org,2002:"
STR, NULL, DATE = TAG + "str", TAG + "null", TAG + "timestamp"
LIST, MAP = " list", " mapping"  # markers for collections; no YAML tag contains a space
WANTED = frozenset(("id", "title", "description", "priority", "effort", "status", "kind"))
WANTED |= {"depends_on", "closed_date", "paths", "scope"}
_KINDS = {"str": "string", "int": "int", "float": "float", "bool": "bool", "timestamp": "date"}

Value = tuple[str, Any, int]  # (tag, or LIST/MAP; text, items or fields; 1-based line)
Flaw = tuple[int, str]  # (1-based line, "field: message"): the file as a whole is unreadable
Emit = Callable[[Value], None]  # receives each entry of the gaps list, in order


@cache
def implicit_tags() -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    import yaml

    return dict(yaml.SafeLoader.yaml_implicit_resolvers)


def plain_tag(text: str) -> str:
    """The tag the safe loader gives an unquoted scalar: ``str`` unless it looks typed."""
    for tag, pattern in implicit_tags().get(text[:1], ()):
        if pattern.match(text):
            return tag
    return STR


def describe(value: Value) -> str:
    """``int 123``, ``string 'FOO'``, ``a list``... for "got ..." messages."""
    tag, text = value[0], value[1]
    if tag in (LIST, MAP, NULL):
        return {LIST: "a list", MAP: "a mapping"}.get(tag, "null")
    kind = _KINDS.get(tag.removeprefix(TAG), tag)
    short = text if len(text) <= 60 else text[:57] + "..."
    return f"{kind} {short!r}" if kind == "string" else f"{kind} {short}"


def tagged(value: object, line: int = 0) -> Value:
    """A Python value (from JSON, an API, a plugin) in the tagged form the checker reads."""
    if value is None:
        return (NULL, "", line)
    if isinstance(value, str):
        return (STR, value, line)
    if isinstance(value, bool):
        return (TAG + "bool", str(value).lower(), line)
    if isinstance(value, int | float):
        return (TAG + ("int" if isinstance(value, int) else "float"), str(value), line)
    if isinstance(value, list | tuple):
        return (LIST, [tagged(item, line) for item in value], line)
    if isinstance(value, dict):
        return (MAP, {str(k): tagged(v, line) for k, v in value.items() if k in WANTED}, line)
    if hasattr(value, "isoformat"):
        return (DATE, value.isoformat(), line)
    return (TAG + type(value).__name__, str(value), line)
