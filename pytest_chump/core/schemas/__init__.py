"""JSON Schemas (draft 2020-12) of chump's machine-readable outputs, shipped in the package
so scripts can validate what they read: ``<command>.schema.json`` per ``--json`` output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def schema(name: str) -> dict[str, Any]:
    """The schema of ``chump <name> --json`` (e.g. ``status``)."""
    loaded: dict[str, Any] = json.loads((HERE / f"{name}.schema.json").read_text("utf-8"))
    return loaded
