"""Thompson routing against an oracle and a static cascade, over many simulated seeds.

Three arms ship with hidden probabilities 0.3 / 0.5 / 0.8; each of 300 dispatches is routed on
the outcomes so far. Run: ``.venv/bin/python -m benchmarks.bench_routing [--seeds N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from benchmarks.report import record
from pytest_chump.core.model import Gap
from pytest_chump.core.records import Arm, ArmStats
from pytest_chump.learn.routing import arm_stats, cascade, thompson
from pytest_chump.state.store import Store

SHIP_P = {Arm("p30"): 0.3, Arm("p50"): 0.5, Arm("p80"): 0.8}
ARMS = list(SHIP_P)  # worst first: the cascade's fixed choice
BEST = max(ARMS, key=SHIP_P.__getitem__)
STEPS, TAIL = 300, 100
Choose = Callable[[Mapping[Arm, ArmStats], random.Random], Arm]

STRATEGIES: dict[str, Choose] = {
    "thompson": lambda stats, rng: thompson(ARMS, stats, rng)[0],
    "oracle (always the 0.8 arm)": lambda stats, rng: BEST,
    "cascade (always the 0.3 arm)": lambda stats, rng: cascade(ARMS),
}


CHECKPOINTS = (10, 30, 100, 200, 300)


def simulate(
    seed: int, choose: Choose, store: Store | None = None, regret: list[float] | None = None
) -> int:
    """Ships among the last ``TAIL`` dispatches; the world's draws depend on ``seed`` only.
    ``regret`` gets the cumulative expected regret after each dispatch (ships an always-best
    router would expect more)."""
    route_rng, world = random.Random(seed), random.Random(seed + 1_000_003)
    counts = {arm: ArmStats() for arm in ARMS}
    tail = 0
    lost = 0.0
    for step in range(STEPS):
        stats = counts if store is None else arm_stats(store, Gap("SIM-1"), ARMS)
        arm = choose(stats, route_rng)
        ok = world.random() < SHIP_P[arm]
        lost += SHIP_P[BEST] - SHIP_P[arm]
        if regret is not None:
            regret.append(lost)
        old = counts[arm]
        counts[arm] = ArmStats(old.successes + ok, old.failures + (not ok))
        if store is not None:
            store.conn.execute(
                "INSERT INTO routing_outcomes(task_class, backend, outcome, created_at) "
                "VALUES ('sim', ?, ?, 0)",
                (arm.spawner, "shipped" if ok else "ci_failed"),
            )
        tail += ok and step >= STEPS - TAIL
    return tail


def through_store(seeds: range) -> tuple[list[int], float]:
    """Thompson runs that read their stats from a real state database; (ships, ms per route)."""
    ships, t0 = [], time.perf_counter()
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp, Store.for_repo(Path(tmp)) as store:
            ships.append(simulate(seed, STRATEGIES["thompson"], store))
    return ships, (time.perf_counter() - t0) * 1000 / (len(seeds) * STEPS)


def row(name: str, ships: list[int], oracle_mean: float) -> str:
    mean = statistics.mean(ships)
    return (
        f"| {name} | {mean:.1f} | {min(ships)} | {max(ships)} | {mean / oracle_mean:.3f} | "
        f"{mean / (TAIL * SHIP_P[BEST]):.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--store-seeds", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    seeds = range(args.seeds)
    t0 = time.perf_counter()
    curves: dict[str, list[list[float]]] = {name: [] for name in STRATEGIES}

    def run(seed: int, name: str) -> int:
        curve: list[float] = []
        curves[name].append(curve)
        return simulate(seed, STRATEGIES[name], regret=curve)

    results = {name: [run(s, name) for s in seeds] for name in STRATEGIES}
    elapsed = time.perf_counter() - t0
    oracle_mean = statistics.mean(results["oracle (always the 0.8 arm)"])
    stored, ms_per_route = through_store(range(args.store_seeds))
    rows = [row(name, ships, oracle_mean) for name, ships in results.items()]
    via_store = f"thompson via SQLite `arm_stats` ({args.store_seeds} seeds)"
    rows.append(row(via_store, stored, oracle_mean))
    body = (
        f"Hidden ship probabilities 0.3 / 0.5 / 0.8, {STEPS} dispatches per run, each routed on "
        f"the outcomes so far; ships counted over the last {TAIL}. {args.seeds} seeds (the same "
        f"simulated world per seed for every strategy); {elapsed:.2f} s in memory. Routing "
        f"through a real store (insert + `arm_stats` + `thompson`): {ms_per_route:.2f} ms per "
        "dispatch.\n\n"
        f"| strategy | mean ships | min | max | / oracle (same world) | / expected best "
        f"({TAIL * SHIP_P[BEST]:.0f}) |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\nRegret curves: cumulative expected ships lost against always routing to the best "
        f"arm, after n dispatches (mean over {args.seeds} seeds).\n\n"
        + "| strategy | "
        + " | ".join(f"n = {c}" for c in CHECKPOINTS)
        + " |\n"
        + "|---|"
        + "---|" * len(CHECKPOINTS)
        + "\n"
        + "\n".join(
            f"| {name} | "
            + " | ".join(
                f"{statistics.mean(curve[c - 1] for curve in curves[name]):.1f}"
                for c in CHECKPOINTS
            )
            + " |"
            for name in STRATEGIES
        )
    )
    if not args.no_write:
        record("routing", "Thompson routing vs oracle and cascade", body)
    print(body)


if __name__ == "__main__":
    main()
