"""Named placeholders (``{gap_id}``) in text a user owns: command templates, prompt templates.

Only plain names are allowed — no attribute access, indexing, conversion or format spec — so
a template cannot reach into the objects it is filled from.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping


def placeholders(template: str, allowed: Iterable[str]) -> set[str]:
    """The placeholders ``template`` uses; ``ValueError`` naming the first one not allowed
    (or the template's syntax error). ``{{`` and ``}}`` are literal braces."""
    valid = tuple(allowed)
    used: set[str] = set()
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        tail = ("!" + conversion if conversion else "") + (":" + spec if spec else "")
        shown = "{" + field + tail + "}"
        if spec or conversion:
            raise ValueError(f"unsupported placeholder {shown}: no conversions or format specs")
        if field not in valid:
            names = ", ".join("{" + name + "}" for name in valid)
            raise ValueError(f"unsupported placeholder {shown} (valid: {names})")
        used.add(field)
    return used


def fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with its (already checked) placeholders replaced."""
    return template.format_map(values)
