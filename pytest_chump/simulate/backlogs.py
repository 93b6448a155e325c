"""Generated backlogs for the simulator: a DAG of ``n`` gaps with seeded priorities, efforts
and dependencies.

``deps_density`` is the mean number of dependencies per gap: each gap depends on about that
many of the 20 gaps declared just before it (never on a later one, so there is no cycle).
Priorities are P0 to P2 and efforts xs to l, the gaps a round may pick.
"""

from __future__ import annotations

import random
from pathlib import Path

from pytest_chump.core.model import Gap
from pytest_chump.core.records import Backlog

EFFORTS = ("xs", "s", "s", "m", "m", "m", "l")
PRIORITIES = ("P0", "P1", "P1", "P2", "P2")
WINDOW = 20


def generate(n: int, deps_density: float = 0.5, seed: int = 0) -> Backlog:
    rng = random.Random(f"backlog:{seed}:{n}:{deps_density}")  # noqa: S311  (a model, not a secret)
    gaps = []
    for i in range(n):
        earlier = list(range(max(0, i - WINDOW), i))
        want = min(len(earlier), _poisson(rng, deps_density))
        deps = tuple(f"SIM-{j:05d}" for j in sorted(rng.sample(earlier, want)))
        gaps.append(
            Gap(
                id=f"SIM-{i:05d}",
                title=f"simulated gap {i}",
                priority=rng.choice(PRIORITIES),
                effort=rng.choice(EFFORTS),
                depends_on=deps,
            )
        )
    return Backlog(Path(f"<generated: {n} gaps, deps density {deps_density:g}>"), tuple(gaps))


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: fine for the small means used here)."""
    if mean <= 0:
        return 0
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
