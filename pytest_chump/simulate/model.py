"""The seeded model of agents that the simulator draws from.

Each attempt of a gap on a backend is one draw, made from its own random stream (seeded by
the seed, the gap id, the backend and the attempt number), so every policy that runs the same
backlog meets exactly the same agents, whatever order it starts them in.

Durations are log-normal around a median per effort, scaled per backend; an attempt ships,
fails its checks, crashes (non-zero exit), exits without a pull request, or hangs until the
deadline ladder stops it, with probabilities per backend. A shipped attempt's pull request
merges ``merge_delay_s`` after the agent exits; a retry after failed checks ships more often
(it is told what failed).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

SHIP, CI_FAIL, CRASH, NO_PR, HANG = "ship", "ci-fail", "crash", "no-pr", "hang"
RESULTS = (SHIP, CI_FAIL, CRASH, NO_PR, HANG)

MEDIAN_MINUTES = {"xs": 4.0, "s": 10.0, "m": 30.0, "l": 80.0, "xl": 200.0}
DEFAULT_RATES = {SHIP: 0.80, CI_FAIL: 0.12, CRASH: 0.04, NO_PR: 0.02, HANG: 0.02}


@dataclass(frozen=True, slots=True)
class Backend:
    """How one backend behaves: its speed (a multiplier of the median duration) and the
    probability of each result of a first attempt."""

    speed: float = 1.0
    rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))


DEFAULT_BACKENDS = {
    "claude": Backend(1.0, {SHIP: 0.82, CI_FAIL: 0.11, CRASH: 0.03, NO_PR: 0.02, HANG: 0.02}),
    "codex": Backend(0.8, {SHIP: 0.72, CI_FAIL: 0.16, CRASH: 0.06, NO_PR: 0.03, HANG: 0.03}),
    "aider": Backend(1.2, {SHIP: 0.65, CI_FAIL: 0.20, CRASH: 0.07, NO_PR: 0.05, HANG: 0.03}),
}


@dataclass(frozen=True, slots=True)
class Draw:
    """One attempt: what it does and how long the agent runs (seconds)."""

    result: str
    duration_s: float


@dataclass(frozen=True)
class Model:
    seed: int = 0
    sigma: float = 0.45  # of the log-normal durations
    merge_delay_s: float = 120.0  # checks and merge after a shipping agent exits
    backends: dict[str, Backend] = field(default_factory=lambda: dict(DEFAULT_BACKENDS))
    retry_lift: float = 0.5  # a retry told what failed: this share of failures ships instead
    failures: bool = True  # False: every attempt ships (the pure scheduling question)

    def backend(self, name: str) -> Backend:
        return self.backends.get(name, Backend())

    def draw(self, gap_id: str, effort: str, backend: str, attempt: int) -> Draw:
        rng = random.Random(f"{self.seed}:{gap_id}:{backend}:{attempt}")  # noqa: S311
        spec = self.backend(backend)
        median = MEDIAN_MINUTES.get(effort, MEDIAN_MINUTES["m"]) * 60.0 * spec.speed
        duration = median * math.exp(rng.gauss(0.0, self.sigma))
        roll = rng.random()
        if not self.failures:
            return Draw(SHIP, duration)
        rates = dict(spec.rates)
        if attempt > 1:  # told what failed: part of the failures turn into ships
            lifted = sum(v for k, v in rates.items() if k != SHIP) * self.retry_lift
            rates = {k: (v * (1 - self.retry_lift) if k != SHIP else v) for k, v in rates.items()}
            rates[SHIP] += lifted
        total = sum(rates.values()) or 1.0
        edge = 0.0
        for result in RESULTS:
            edge += rates.get(result, 0.0) / total
            if roll < edge:
                break
        else:
            result = SHIP
        if result == CRASH:
            duration *= rng.uniform(0.05, 0.6)  # crashes come early
        return Draw(result, duration)
