"""What a dispatch cost, from what its agent reported: claude's result event
(``total_cost_usd`` and ``usage``), codex's summed ``turn.completed`` usage (tokens, no USD).
Unknown stays None: a cost is never guessed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CACHE_KEYS = ("cache_creation_input_tokens", "cache_read_input_tokens", "cached_input_tokens")


@dataclass(frozen=True, slots=True)
class Usage:
    cost_usd: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_cache: int | None = None

    def columns(self) -> dict[str, object]:
        """The dispatch row's cost columns."""
        return {
            "cost_usd": self.cost_usd,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_cache": self.tokens_cache,
        }


def usage_of(report: Mapping[str, object]) -> Usage:
    cost = report.get("total_cost_usd")
    usage = report.get("usage")
    counts = usage if isinstance(usage, Mapping) else {}
    cache = [_count(counts.get(key)) for key in CACHE_KEYS]
    known_cache = [c for c in cache if c is not None]
    return Usage(
        float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
        _count(counts.get("input_tokens")),
        _count(counts.get("output_tokens")),
        sum(known_cache) if known_cache else None,
    )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
