"""Parsers for setting values: each takes a raw value (TOML, env text or a flag) and returns it
typed, or raises ``ValueError`` with a message that makes sense after the value's source.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_chump.core.model import EFFORTS, STATUSES

Parser = Callable[[object], Any]
_DURATION_RE = re.compile(r"(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE_RE = re.compile(r"(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[kmg]i?b?|b)?", re.I)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def integer(minimum: int) -> Parser:
    def parse(value: object) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            number = int(value)
        if number is None:
            raise ValueError(f"expected an integer, got {value!r}")
        if number < minimum:
            raise ValueError(f"must be at least {minimum}, got {number}")
        return number

    return parse


def number(minimum: float = 0.0, maximum: float | None = None) -> Parser:
    def parse(value: object) -> float:
        try:
            result = float(value) if isinstance(value, int | float | str) else None
        except ValueError:
            result = None
        if result is None or isinstance(value, bool) or not math.isfinite(result):
            raise ValueError(f"expected a number, got {value!r}")
        if result < minimum or (maximum is not None and result > maximum):
            upper = "" if maximum is None else f" to {maximum:g}"
            raise ValueError(f"expected a number from {minimum:g}{upper}, got {value!r}")
        return result

    return parse


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {value!r}")


def text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value.strip()


def choice(*choices: str) -> Parser:
    def parse(value: object) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return parse


def branch_prefix(value: object) -> str:
    result = text(value)
    if not result.endswith("/") or ".." in result or result.startswith(("/", "-")) or " " in result:
        raise ValueError(f"expected a branch prefix like 'chump/', got {value!r}")
    return result


def relative_path(value: object) -> str:
    result = text(value)
    if Path(result).is_absolute() or ".." in Path(result).parts:
        raise ValueError(f"expected a path inside the repository, got {value!r}")
    return result


def optional_relative_path(value: object) -> str:
    """A path inside the repository, or "" for none."""
    if isinstance(value, str) and not value.strip():
        return ""
    return relative_path(value)


def duration(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"20m"``, ``"1.5h"`` or ``"250ms"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a duration like 30s, 20m or 2h, got {value!r}")
        return float(value)
    match = _DURATION_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a duration like 30s, 20m or 2h, got {value!r}")
    return float(match["num"]) * _UNITS[match["unit"]]


def size(value: object) -> int:
    """Bytes from ``1048576``, ``"500kB"``, ``"64MiB"`` or ``"2GB"`` (at least 4 KiB)."""
    match = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        match = _SIZE_RE.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"expected a size like 500kB, 64MiB or 2GB, got {value!r}")
        unit = (match["unit"] or "").lower()
        base = 1024 if "i" in unit else 1000
        scale = base ** "bkmg".index(unit[0]) if unit else 1
        number = int(float(match["num"]) * scale)
    if number < 4096:
        raise ValueError(f"must be at least 4096 bytes, got {value!r}")
    return number


def positive_duration(value: object) -> float:
    """A duration (see :func:`duration`) of more than 0 seconds: a timeout."""
    seconds = duration(value)
    if seconds <= 0:
        raise ValueError(f"must be more than 0, got {value!r}")
    return seconds


def per_effort_durations(defaults: Mapping[str, float]) -> Parser:
    """A table ``{effort: duration}`` merged over ``defaults`` (``default`` = unknown effort)."""

    def parse(value: object) -> dict[str, float]:
        if not isinstance(value, Mapping):
            raise ValueError(f"expected a table of effort = duration, got {value!r}")
        merged = dict(defaults)
        for key, raw in value.items():
            if key not in (*EFFORTS, "default"):
                raise ValueError(f"unknown effort {key!r} (expected {', '.join(EFFORTS)}, default)")
            try:
                merged[key] = duration(raw)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return merged

    return parse


def table(value: object) -> dict[str, Any]:
    """A TOML table, kept as a dict for the component that owns it to validate."""
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a table, got {value!r}")
    return dict(value)


def tables(value: object) -> dict[str, dict[str, Any]]:
    """A table of named sub-tables, e.g. ``[tool.chump.spawners.<name>]``."""
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise ValueError(f"expected a table of tables, got {value!r}")
    return {str(k): dict(v) for k, v in value.items()}


def names(value: object) -> tuple[str, ...]:
    """A list of names, or a comma-separated string of them."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"expected a list of names, got {value!r}")
    return tuple(i.strip() for i in items if i.strip())


def status_aliases(value: object) -> dict[str, str]:
    """A table ``{team status: chump status}``, e.g. ``{shipped = "done"}``."""
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a table of status = status, got {value!r}")
    aliases: dict[str, str] = {}
    for key, target in value.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"expected status names as keys, got {key!r}")
        if target not in STATUSES:
            valid = ", ".join(STATUSES)
            raise ValueError(f"{key}: {target!r} is not a chump status (valid: {valid})")
        aliases[key] = str(target)
    return aliases
