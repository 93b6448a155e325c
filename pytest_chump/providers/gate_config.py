"""What ``[tool.chump.merge_gate]`` asks of the git provider's merge gate: the check command,
its timeout and how to merge; every bad entry is a one-line UsageError naming its key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_chump.core.config_values import positive_duration
from pytest_chump.core.errors import UsageError

SECTION = "[tool.chump.merge_gate]"
KEYS = ("command", "timeout", "merge")


@dataclass(frozen=True, slots=True)
class GateConfig:
    """What the gate runs (an argv list), for how long at most, and how it merges."""

    command: tuple[str, ...]
    timeout: float = 600.0
    merge: str = "merge"  # "merge": fast-forward when possible, else a merge commit; "ff": only ff


def parse_gate(table: Mapping[str, Any]) -> GateConfig | None:
    """The gate ``[tool.chump.merge_gate]`` sets up (None when empty), or a one-line UsageError."""
    if not table:
        return None
    for key in table:
        if key not in KEYS:
            raise UsageError(f"{SECTION} {key}: unknown key (valid: {', '.join(KEYS)})")
    command = table.get("command")
    if not (isinstance(command, list) and command and all(isinstance(a, str) for a in command)):
        raise UsageError(f"{SECTION} command: expected a list of strings, got {command!r}")
    mode = table.get("merge", "merge")
    if mode not in ("merge", "ff"):
        raise UsageError(f"{SECTION} merge: expected ff or merge, got {mode!r}")
    return GateConfig(tuple(command), _timeout(table.get("timeout", "10m")), str(mode))


def _timeout(raw: object) -> float:
    try:
        return positive_duration(raw)
    except ValueError as exc:
        raise UsageError(f"{SECTION} timeout: {exc}") from None
