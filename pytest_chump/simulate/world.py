"""The simulated world the real loop runs in: a virtual clock with a queue of what happens
when, agents that exit when their drawn duration has passed, and a PR provider that reports
what each agent's attempt did.

The loop sleeps through ``Clock.wait``; here that jumps the clock to the next thing that
happens (an agent exiting, a pull request merging) or to the loop's own timeout, whichever
comes first — so hours of agents take milliseconds, and the loop's decisions are the real
ones at the times they would be made.
"""

from __future__ import annotations

import heapq
import itertools
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_chump.core.errors import ChumpError
from pytest_chump.core.protocols import PrStatus, SpawnRequest, Watch
from pytest_chump.loop.clock import Clock
from pytest_chump.simulate.model import CI_FAIL, CRASH, HANG, NO_PR, SHIP, Draw, Model

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z: virtual time starts here
HORIZON_S = 400 * 86400.0  # a run longer than this is a bug (a loop that never ends)


class SimulationStuck(ChumpError):
    """The simulated run passed the horizon: a backlog too long for it, or a loop that never
    ends (one line, exit 2, as any ChumpError)."""


class VirtualClock(Clock):
    """Time that moves only when the loop sleeps, straight to the next event."""

    def __init__(self, start: float = EPOCH) -> None:
        self.start = start
        self.t = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self.waits = 0

    def now(self) -> float:
        return self.start + self.t

    def monotonic(self) -> float:
        return self.t

    def at(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` when ``delay`` seconds of virtual time have passed."""
        heapq.heappush(self._queue, (self.t + max(0.0, delay), next(self._order), action))

    def wait(self, event: threading.Event, timeout: float) -> None:
        self.waits += 1
        if event.is_set():
            event.clear()
            return
        target = self.t + max(timeout, 1e-3)  # a zero timeout still moves time on
        while self._queue and self._queue[0][0] <= target:
            when, _, action = heapq.heappop(self._queue)
            self.t = max(self.t, when)
            action()
            if event.is_set():
                break
        else:
            self.t = target
        if self.t > HORIZON_S:
            raise SimulationStuck(
                f"the simulation passed {HORIZON_S / 86400:g} days of virtual time; "
                "simulate fewer gaps or more slots"
            )
        event.clear()


@dataclass
class Attempt:
    """One simulated agent: what the model drew, and what happened to it."""

    gap_id: str
    backend: str
    attempt: int
    draw: Draw
    started: float
    branch: str
    exited: float | None = None
    exit_code: int | None = None
    merged_at: float | None = None  # when its PR merges (shipping attempts)
    stopped: bool = False


class SimHandle:
    """A simulated agent process: exits when its drawn duration has passed (a hanging one
    only when stopped)."""

    def __init__(self, world: World, attempt: Attempt, notify: Callable[[], None] | None):
        self.pid: int | None = None
        self.log_path: Path | None = None
        self.world, self.attempt, self._notify = world, attempt, notify
        if attempt.draw.result != HANG:
            code = 1 if attempt.draw.result == CRASH else 0
            world.clock.at(attempt.draw.duration_s, lambda: self._exit(code))

    def _exit(self, code: int) -> None:
        a = self.attempt
        if a.exit_code is not None:
            return
        a.exit_code, a.exited = code, self.world.clock.t
        if code == 0 and a.draw.result == SHIP and not a.stopped:
            a.merged_at = a.exited + self.world.model.merge_delay_s
        if self._notify is not None:
            self._notify()

    def poll(self) -> int | None:
        return self.attempt.exit_code

    def terminate(self) -> None:
        self.attempt.stopped = True
        self.world.clock.at(1.0, lambda: self._exit(-signal.SIGTERM))  # it exits promptly

    def kill(self) -> None:
        self.attempt.stopped = True
        if self.attempt.exit_code is None:
            self._exit(-signal.SIGKILL)

    def stderr_tail(self) -> list[str]:
        return ["simulated crash"] if self.attempt.draw.result == CRASH else []

    def last_activity(self) -> float:
        return self.world.clock.t  # a simulated agent never falls silent

    def report(self) -> Mapping[str, object]:
        return {"simulated": self.attempt.draw.result}

    def close(self) -> None:
        return None


@dataclass
class World:
    """What the simulated agents and provider share: the clock, the model, every attempt."""

    clock: VirtualClock
    model: Model
    attempts: list[Attempt] = field(default_factory=list)
    by_branch: dict[str, Attempt] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._numbers = itertools.count(1)
        self._pr_of: dict[tuple[str, int], int] = {}

    def spawner(self, backend: str) -> SimSpawner:
        return SimSpawner(self, backend)

    def start(self, request: SpawnRequest, backend: str) -> SimHandle:
        n = 1 + sum(1 for a in self.attempts if a.gap_id == request.gap.id)
        draw = self.model.draw(request.gap.id, request.gap.effort, backend, n)
        attempt = Attempt(request.gap.id, backend, n, draw, self.clock.t, request.branch)
        self.attempts.append(attempt)
        self.by_branch[request.branch] = attempt
        return SimHandle(self, attempt, request.notify)

    def pr_status(self, branch: str) -> PrStatus | None:
        """What a forge would say of ``branch`` now (None: no pull request)."""
        a = self.by_branch.get(branch)
        if a is None or a.exited is None or a.exit_code != 0 or a.draw.result == NO_PR:
            return None
        key = (branch, a.attempt)
        number = self._pr_of.setdefault(key, next(self._numbers))
        if a.draw.result == CI_FAIL:
            return PrStatus(number, "OPEN", checks="failing", failing_checks=("tests",))
        if a.merged_at is not None and self.clock.t >= a.merged_at:
            return PrStatus(number, "MERGED", checks="passing")
        return PrStatus(number, "OPEN", checks="pending")


class SimSpawner:
    """Starts simulated agents of one backend (the routing arm's spawner name)."""

    def __init__(self, world: World, name: str) -> None:
        self.world, self.name = world, name

    def spawn(self, request: SpawnRequest) -> SimHandle:
        return self.world.start(request, self.name)


class SimProvider:
    """The PR provider of the simulated world: one call answers for every branch."""

    name = "simulated"

    def __init__(self, world: World) -> None:
        self.world = world
        self.calls = 0

    def poll(self, watches: Sequence[Watch]) -> Mapping[str, PrStatus]:
        self.calls += 1
        found = {w.branch: self.world.pr_status(w.branch) for w in watches}
        return {branch: status for branch, status in found.items() if status is not None}
