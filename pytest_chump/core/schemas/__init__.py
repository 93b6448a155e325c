"""JSON Schemas (draft 2020-12) of chump's machine-readable outputs, shipped in the package
so scripts can validate what they read: ``<command>.schema.json`` per ``--json`` output.

Most commands print one JSON document; those in :data:`LINES` print JSON Lines (one object
per line, none when there is nothing to list), and their schema describes one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SUFFIX = ".schema.json"
LINES = frozenset({"costs", "ready", "reflections"})
"""Commands whose ``--json`` prints one object per line, each valid against the schema."""
OTHERS = {
    "event": "one event: a line of `chump dispatch --events`, a message of GET /api/v1/events",
    "api-state": "GET /api/v1/state of `chump serve`",
}
"""Shipped schemas of outputs that are not a command's ``--json``."""


def schema(name: str) -> dict[str, Any]:
    """The schema of ``chump <name> --json`` (e.g. ``status``), or one of :data:`OTHERS`."""
    loaded: dict[str, Any] = json.loads((HERE / f"{name}{SUFFIX}").read_text("utf-8"))
    return loaded


def names() -> list[str]:
    """Every command with a shipped schema, sorted (not :data:`OTHERS`)."""
    found = (p.name.removesuffix(SUFFIX) for p in HERE.glob(f"*{SUFFIX}"))
    return sorted(name for name in found if name not in OTHERS)
