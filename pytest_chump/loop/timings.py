"""Latency histograms an orchestrator keeps for ``/metrics``: provider polls, refills (a slot
freed → the next agent started in it) and dispatch starts (worktree, set-up, spawn).

Fixed buckets, so histograms of several orchestrators add up; saved to the store every few
seconds (``Store.save_timings``) where ``chump serve`` reads them.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds in seconds (Prometheus ``le``); one more bucket holds the rest."""
NAMES = ("provider_poll_seconds", "refill_latency_seconds", "dispatch_start_seconds")
SAVE_EVERY_S = 5.0


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def as_dict(self) -> dict[str, object]:
        return {"buckets": list(self.counts), "sum": self.total, "count": sum(self.counts)}


@dataclass
class Timings:
    """One orchestrator's histograms, and when they were last saved."""

    save: Callable[[dict[str, object]], None] | None = None
    histograms: dict[str, Histogram] = field(
        default_factory=lambda: {name: Histogram() for name in NAMES}
    )
    _saved_at: float = field(default_factory=time.monotonic)
    """The first save comes ``SAVE_EVERY_S`` after the start, not at the first observation:
    a run shorter than that saves once, when it ends (``flush(force=True)``)."""
    _dirty: bool = False

    def observe(self, name: str, seconds: float) -> None:
        self.histograms[name].observe(max(0.0, seconds))
        self._dirty = True

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.observe(name, time.monotonic() - start)

    def as_dict(self) -> dict[str, object]:
        return {
            "buckets": list(BUCKETS),
            **{name: h.as_dict() for name, h in self.histograms.items()},
        }

    def flush(self, force: bool = False) -> None:
        """Save when something changed and the last save is ``SAVE_EVERY_S`` old (or now)."""
        now = time.monotonic()
        if self.save is None or not self._dirty:
            return
        if not force and now - self._saved_at < SAVE_EVERY_S:
            return
        self.save(self.as_dict())
        self._saved_at, self._dirty = now, False
