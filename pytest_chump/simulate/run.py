"""Run a backlog through the real loop in the simulated world, and measure the schedule.

The orchestrator, picker, router, dispatcher, monitor, deadline ladder, reactions and
finisher are the real ones, over a real (in-memory) store and the real reflections and
sinks; only the agents, the PR provider, the workspaces and the clock are simulated.

Figures: the makespan (first dispatch to the last outcome), a lower bound no schedule of the
same attempts can beat — the longer of the critical path (each gap weighing the work of all
its attempts) and the total work divided by the slots — their ratio, and the slot
utilisation (work / (slots * makespan)). The work of an attempt is what the model drew for
it, held as an ideal loop would hold its slot (:func:`attempt_slot_time`: no poll delay, no
overhead), never the slot time measured in the run: that includes the loop's own delays
(a merge seen at the next poll), which a bound must not credit to the work. The measured
slot time is reported beside it (``slot_s``).
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pytest_chump.core import config_sources
from pytest_chump.core.config import Settings
from pytest_chump.core.model import Gap
from pytest_chump.core.plugins import get_plugin_manager
from pytest_chump.core.records import Backlog
from pytest_chump.dispatch.workspaces import NoWorkspaces
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.observe import snapshot
from pytest_chump.simulate.model import HANG, NO_PR, SHIP, Model
from pytest_chump.simulate.world import SimProvider, VirtualClock, World
from pytest_chump.state.store import Store

CONTINUOUS = "continuous"
MIN_POLL_S = 5.0


@dataclass
class Result:
    """What one simulated run did."""

    policy: str
    order: str
    gaps: int
    slots: int
    makespan_s: float
    critical_path_s: float
    work_s: float  # what the attempts take (the model's draws, held as an ideal loop would)
    dispatches: int
    shipped: int
    outcomes: dict[str, int]
    wall_s: float
    history: dict[str, object] = field(default_factory=dict, repr=False)
    slot_s: float | None = None  # slot time measured (start to outcome); None: ``work_s``

    @property
    def lower_bound_s(self) -> float:
        return max(self.critical_path_s, self.work_s / max(self.slots, 1))

    @property
    def ratio(self) -> float:
        return self.makespan_s / self.lower_bound_s if self.lower_bound_s else 1.0

    @property
    def utilisation(self) -> float:
        """The share of the slots' time that the work filled (the rest: idle slots and the
        loop's own delays)."""
        span = self.makespan_s * self.slots
        return self.work_s / span if span else 0.0

    @property
    def measured_slot_s(self) -> float:
        return self.work_s if self.slot_s is None else self.slot_s

    def as_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "order": self.order,
            "gaps": self.gaps,
            "slots": self.slots,
            "makespan_s": round(self.makespan_s, 3),
            "lower_bound_s": round(self.lower_bound_s, 3),
            "critical_path_s": round(self.critical_path_s, 3),
            "work_s": round(self.work_s, 3),
            "slot_s": round(self.measured_slot_s, 3),
            "ratio": round(self.ratio, 4),
            "utilisation": round(self.utilisation, 4),
            "dispatches": self.dispatches,
            "shipped": self.shipped,
            "outcomes": dict(sorted(self.outcomes.items())),
            "wall_s": round(self.wall_s, 3),
        }


def settings_for(
    root: Path, slots: int, order: str, backends: Sequence[str], **overrides: object
) -> Settings:
    """The settings of a simulated run: the given slots, picker order and backends (several:
    the router chooses among them), the real defaults for everything else."""
    flags: dict[str, object] = {
        "max_parallel": slots,
        "spawner": backends[0],
        "pr_provider": "instant",  # (not used: the simulated provider is passed in)
        "sinks": "memory",
        "base_ref": "HEAD",
        "picker_order": order,
        "lessons": False,
        "lease_ttl": 10**9,  # one process, virtual time: nobody takes anything over
        "routing_seed": 0,
        **overrides,
    }
    table: dict[str, object] = {}
    if len(backends) > 1:
        table["routing"] = {"default": [{"spawner": b} for b in backends]}
    return config_sources.resolve(root, flags, env={}, table=table)


def simulated(base: Settings, slots: int, order: str, seed: int = 0) -> Settings:
    """A repository's own settings (deadlines, retries, routing, picker, poll interval ...)
    made to run simulated: on ``slots``, with the memory sink.

    The root stays the repository's, so what a real dispatch reads there is read the same
    way — the prompt template, the rules file, ``.chump/routing.yaml``, the backlog's path
    in the prompt — and worktree paths and branches are named as a real dispatch names
    them. Nothing is written there: the store is in memory, there are no workspaces and no
    worktree set-up (commands, includes, pool), no lessons (they would be read from the
    real history) and no notifications. A poll interval under ``MIN_POLL_S`` is raised to
    it: agents take minutes, and hours of virtual time polled every few milliseconds would
    only cost time."""
    return dataclasses.replace(
        base,
        poll_interval=max(base.poll_interval, MIN_POLL_S),
        max_parallel=slots,
        picker_order=order,
        sinks=("memory",),
        lessons=False,
        lease_ttl=float(10**9),
        worktree={},  # simulated agents have no worktree to set up
        worktree_include=(),
        worktree_pool=0,
        notify={},  # nobody is told of simulated events
        routing_seed=base.routing_seed if base.routing_seed is not None else seed,
    )


def simulate(
    backlog: Backlog,
    *,
    slots: int = 4,
    model: Model | None = None,
    order: str | None = None,
    backends: Sequence[str] = ("claude",),
    overrides: dict[str, object] | None = None,
    base: Settings | None = None,
    events: TextIO | None = None,
) -> Result:
    """Drive ``backlog`` through the real loop on virtual time; see the module docstring.
    ``base``: a repository's settings to simulate with, in the repository (see
    :func:`simulated`; default: chump's defaults with ``backends`` as the arms and
    ``overrides``, in a scratch folder); ``order``: the picker order (default: the base's,
    else critical-path); ``events``: where the run's events go, one
    JSON line each (as ``chump dispatch --events``; their times are the virtual ones)."""
    started = time.perf_counter()
    model = model or Model()
    order = order or (base.picker_order if base is not None else "critical-path")
    clock = VirtualClock()
    world = World(clock, model)
    scratch = None if base is not None else Path(tempfile.mkdtemp(prefix="chump-simulate-"))
    try:
        if base is not None:
            settings = simulated(base, slots, order, model.seed)
        else:
            assert scratch is not None
            settings = settings_for(scratch, slots, order, backends, **(overrides or {}))
        # built-in plugins only: no third party hears of simulated dispatches and outcomes
        app = App(settings, get_plugin_manager(env={"CHUMP_LOAD_PLUGINS": ""}))
        app.pm.hook.chump_configure(settings=settings)  # the router, seeded
        progress = Progress(io.StringIO(), io.StringIO())
        progress.events.clock = clock.now
        if events is not None:
            progress.events.writers.append(events)
        with Store(Path(":memory:")) as store:
            store.clock = clock.now
            orch = Orchestrator(
                app,
                store,
                world.spawner,
                SimProvider(world),
                progress,
                clock=clock,
                workspaces=NoWorkspaces(),
                heartbeat=False,
            )
            # a store in memory has no workers: every start runs on the loop thread, in the
            # picker's order, so a run is the same every time (see loop/workers.py)
            assert orch.workers is None
            orch.monitor.base_done = frozenset
            orch.backlog = backlog
            orch.run()
            rows = store.dispatches()
            history = snapshot.history(store, settings, clock.start)
        outcomes = Counter(row.outcome or "unfinished" for row in rows)
        end = max((row.ended_at or clock.now() for row in rows), default=clock.start)
        begin = min((row.started_at for row in rows), default=clock.start)
        work = _work(world, backlog.gaps, settings)
        return Result(
            CONTINUOUS,
            order,
            len(backlog.gaps),
            slots,
            end - begin,
            critical_path(backlog.gaps, work),
            sum(work.values()),
            len(rows),
            len({row.gap_id for row in rows if row.outcome == "shipped"}),
            dict(outcomes),
            time.perf_counter() - started,
            history,
            sum(_slot_time(rows).values()),
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _work(world: World, gaps: Sequence[Gap], settings: Settings) -> dict[str, float]:
    """Per gap, the work of every attempt the run made: what the model drew for it, held
    as an ideal loop would hold its slot."""
    by_id = {g.id: g for g in gaps}
    work: dict[str, float] = {}
    for a in world.attempts:
        gap = by_id.get(a.gap_id)
        if gap is not None:
            held = attempt_slot_time(world.model, settings, gap, a.backend, a.attempt)
            work[a.gap_id] = work.get(a.gap_id, 0.0) + held
    return work


def _slot_time(rows: Iterable[object]) -> dict[str, float]:
    """Per gap, the slot time of all its dispatches (start to outcome)."""
    spent: dict[str, float] = {}
    for row in rows:
        start, end = getattr(row, "started_at", 0.0), getattr(row, "ended_at", None)
        gap_id = str(getattr(row, "gap_id", ""))
        if end is not None:
            spent[gap_id] = spent.get(gap_id, 0.0) + max(0.0, end - start)
    return spent


def critical_path(gaps: Sequence[Gap], weight: dict[str, float]) -> float:
    """The heaviest chain of dependencies (a gap weighs ``weight[id]``, 0 when absent)."""
    by_id = {g.id: g for g in gaps}
    longest: dict[str, float] = {}
    for gap in _topological(gaps):
        before = max((longest.get(d, 0.0) for d in gap.depends_on if d in by_id), default=0.0)
        longest[gap.id] = before + weight.get(gap.id, 0.0)
    return max(longest.values(), default=0.0)


def _topological(gaps: Sequence[Gap]) -> list[Gap]:
    by_id = {g.id: g for g in gaps}
    seen: set[str] = set()
    order: list[Gap] = []
    for root in gaps:
        stack = [(root, False)]
        while stack:
            gap, expanded = stack.pop()
            if expanded:
                order.append(gap)
                continue
            if gap.id in seen:
                continue
            seen.add(gap.id)
            stack.append((gap, True))
            stack += [(by_id[d], False) for d in gap.depends_on if d in by_id and d not in seen]
    return order


STOP_EXIT_S = 1.0  # a simulated agent exits this long after SIGTERM (``SimHandle``)


def attempt_result(model: Model, settings: Settings, gap: Gap, backend: str, n: int) -> str:
    """What attempt ``n`` of ``gap`` comes to: the model's draw, except that an agent still
    running at twice its soft deadline is stopped there (``HANG``: the deadline ladder;
    simulated agents open their pull request only as they exit)."""
    draw = model.draw(gap.id, gap.effort, backend, n)
    return HANG if draw.duration_s > 2 * settings.soft_deadline(gap.effort) else draw.result


def attempt_slot_time(model: Model, settings: Settings, gap: Gap, backend: str, n: int) -> float:
    """How long attempt ``n`` of ``gap`` holds a slot under an ideal loop — one that sees
    every exit, pull request and merge the moment it happens (no poll delay) and decides as
    :func:`~pytest_chump.loop.decide.decide` does: the work the attempt takes. The
    simulated run's lower bound and the reference rounds use it."""
    duration = model.draw(gap.id, gap.effort, backend, n).duration_s
    soft = settings.soft_deadline(gap.effort)
    result = attempt_result(model, settings, gap, backend, n)
    if result == HANG:
        return 2 * soft + STOP_EXIT_S
    if result == NO_PR:  # stalled after the exit grace, or at once past the soft deadline
        return min(duration + settings.exit_grace, max(duration, soft))
    if result == SHIP:
        return duration + model.merge_delay_s
    return duration  # a crash, or failed checks seen as it exits
