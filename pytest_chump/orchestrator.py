"""The orchestrator loop: keep slots full, watch agents and PRs, finish each dispatch once.

Continuous, not in rounds: when a dispatch ends, the gaps it unblocked and the freed slot
are filled at once. The loop sleeps on an event that agents' handles set when they exit or
print, with a timeout that is the next provider poll or deadline — never a fixed tick.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pytest_chump.adopted import adopt_orphans
from pytest_chump.app import App
from pytest_chump.backlog import Backlog
from pytest_chump.causes import report_failed
from pytest_chump.committed import done_on_base
from pytest_chump.contracts import Outcome, PrProvider, PrStatus, Spawner, Watch
from pytest_chump.decide import FINISH, STOP, Observation, decide, next_due
from pytest_chump.dispatcher import Dispatcher, DispatchFailed, Flight
from pytest_chump.errors import ChumpError
from pytest_chump.finisher import Finisher
from pytest_chump.model import Gap
from pytest_chump.owners import make_owner
from pytest_chump.progress import Progress
from pytest_chump.routing import choose_arm, load_table
from pytest_chump.store import Store
from pytest_chump.workspaces import GitWorktrees, Workspaces


class Clock:
    """Wall-clock time and waiting; tests inject one that does not sleep."""

    def now(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, timeout: float) -> None:
        event.wait(max(0.0, timeout))
        event.clear()


@dataclass
class Orchestrator:
    """Drives one repository's backlog with one spawner factory and one PR provider."""

    app: App
    store: Store
    spawner: Callable[[str], Spawner]
    provider: PrProvider
    progress: Progress
    clock: Clock = field(default_factory=Clock)
    watch: bool = True
    owner: str = field(default_factory=make_owner)
    flights: list[Flight] = field(default_factory=list)
    attempted: set[str] = field(default_factory=set)
    stopping: str = ""
    wake: threading.Event = field(default_factory=threading.Event)
    nudged: threading.Event = field(default_factory=threading.Event)
    _next_poll: float = 0.0
    _prs: dict[str, PrStatus] = field(default_factory=dict)
    _done_on_base: frozenset[str] = frozenset()
    workspaces: Workspaces | None = None

    def __post_init__(self) -> None:
        self._tick_in_flight = 0
        self.app.sinks()  # an unknown sink name fails now, before anything is dispatched
        self.started_at = self.store.register_owner(self.owner)
        self.dispatcher = Dispatcher(
            self.app.settings,
            self.store,
            self.app.pm,
            self.owner,
            self.spawner,
            self.clock.now,
            self.workspaces
            or GitWorktrees(self.app.settings.repo_root, self.app.settings.bot_identity),
            self.wake.set,
            self.progress.warn,
        )
        self.finisher = Finisher(
            self.app, self.store, self.progress, self.owner, self.clock.now, self.dispatcher.remove
        )
        self.backlog: Backlog | None = None
        if hasattr(self.provider, "notify"):  # e.g. the merge gate: wake when it finishes
            self.provider.notify = self.wake.set
        self.routes = load_table(self.app.settings)
        self._check_arms()

    def _check_arms(self) -> None:
        """Every spawner the routing table names must exist, before anything is dispatched."""
        arms = {a for rule in self.routes.rules for a in rule.arms} | set(self.routes.default)
        for arm in sorted(arms, key=lambda a: a.label):
            self.spawner(arm.spawner)  # an unknown name fails listing the valid ones

    # --- the loop -------------------------------------------------------------------

    def run(self) -> None:
        """Dispatch and (with ``watch``) watch until nothing is in flight and nothing is ready."""
        self.backlog = self.app.load_backlog()
        self.finisher.redeliver()
        if self.watch:
            self.adopt()
        while True:
            self._reload_if_nudged()
            if not self.stopping:
                self.refill()
            self.finisher.teardown_pending()
            if (not self.flights and not self.nudged.is_set()) or not self.watch:
                return
            self.poll_provider()
            self._tick_in_flight = len(self.flights)
            finished = sum(self.step(flight) for flight in list(self.flights))
            self.progress.status(self.flights)
            if not finished:
                self.clock.wait(self.wake, self._timeout())

    def adopt(self) -> None:
        """Resume after a crash: take over the dispatches of orchestrators that are gone."""
        assert self.backlog is not None
        for flight in adopt_orphans(self.store, self.backlog, self.owner):
            self.attempted.add(flight.dispatch.gap.id)
            self.flights.append(flight)
            handle = flight.dispatch.handle
            pid = handle.pid if handle and handle.pid else "-"
            self.progress.line(f"RESUMED: {flight.dispatch.gap.id} (pid {pid})")

    def nudge(self) -> None:
        """Re-read the backlog at the next turn of the loop (safe from a signal handler).

        New gaps and gaps a merge unblocked become eligible; gaps that already ended in this
        run are not dispatched again by it.
        """
        self.nudged.set()
        self.wake.set()

    def _reload_if_nudged(self) -> None:
        if not self.nudged.is_set():
            return
        self.nudged.clear()
        try:
            self.backlog = self.app.load_backlog()
        except ChumpError as exc:  # keep dispatching from the last valid backlog
            self.progress.warn(f"backlog not reloaded: {exc.lines()[0]}")
            return
        self.progress.line(f"RELOADED: {len(self.backlog.gaps)} gaps")

    def stop(self, reason: str) -> None:
        """Stop dispatching and stop every agent (TERM, grace, KILL); called on SIGINT/SIGTERM."""
        self.stopping = reason
        for flight in self.flights:
            if flight.stop_outcome is None:
                flight.stop_outcome = Outcome("killed", reason=reason, cause="interrupted")
        self.wake.set()

    def refill(self) -> None:
        """Start ready gaps while slots are free; a dispatch that fails to start is reported."""
        assert self.backlog is not None
        while not self.stopping and (slots := self.app.settings.max_parallel - len(self.flights)):
            picks = self.app.pick(self.backlog, max(slots, 0), self._busy(), self._shipped())
            if not picks:
                return
            for gap in picks:
                if self.stopping:  # a signal arrived while this refill was starting agents
                    return
                self.attempted.add(gap.id)
                self._start(gap)

    def _busy(self) -> frozenset[str]:
        """Gaps not to start now: tried by this run, leased, unfinished anywhere (an agent of
        a crashed orchestrator may still run it), or dispatched by a twin since this run's
        cohort began (see ``Store.register_owner``)."""
        since = self.store.dispatches("started_at >= ?", (self.started_at,))
        return frozenset(
            self.attempted
            | set(self.store.live_leases())
            | {row.gap_id for row in self.store.unfinished()}
            | {row.gap_id for row in since}
        )

    def _shipped(self) -> frozenset[str]:
        return self.store.shipped_ids() | self.finisher.shipped

    def _start(self, gap: Gap) -> None:
        arm, posterior = choose_arm(
            self.app, self.store, gap, table=self.routes, warn=self.progress.warn
        )
        backend = arm.spawner
        try:
            flight = self.dispatcher.start(
                gap, backend, arm.model, {"arm": arm.label, "posterior": posterior}
            )
        except DispatchFailed as exc:
            self.progress.dispatch_failed(gap.id, str(exc))
            self.finisher.spawn_failed(gap, backend, str(exc), exc.dispatch_id)
            return
        if flight is not None:
            self.flights.append(flight)
            self._next_poll = self.clock.now()  # look for its PR promptly
            self.progress.dispatched(flight)

    # --- watching -------------------------------------------------------------------

    def poll_provider(self) -> None:
        now = self.clock.now()
        if now < self._next_poll or not self.flights:
            return
        self._next_poll = now + self.app.settings.poll_interval
        watches = [self._watch_of(f) for f in self.flights]
        try:
            self._prs = dict(self.provider.poll(watches))
        except ChumpError as exc:
            self.progress.provider_error(str(exc))
        except Exception as exc:  # a provider plugin's bug must not stop every agent's watch
            self.progress.provider_error(f"{type(exc).__name__}: {exc}")
        settings = self.app.settings
        self._done_on_base = done_on_base(
            settings.repo_root, settings.base_ref, settings.backlog_path
        )

    def _watch_of(self, flight: Flight) -> Watch:
        d = flight.dispatch
        finished = flight.exited_at is not None
        code = (d.handle.poll() if d.handle else 0) if finished else None
        return Watch(d.branch, d.gap.id, flight.base_sha, d.worktree, finished, code)

    def observe(self, flight: Flight) -> Observation:
        d, now, settings = flight.dispatch, self.clock.now(), self.app.settings
        exit_code = d.handle.poll() if d.handle else 0
        if exit_code is not None and flight.exited_at is None:
            flight.exited_at = now
            self._next_poll = now  # an agent finished: its PR is worth a look now
        report = d.handle.report() if d.handle else {}
        return Observation(
            elapsed=now - d.started_at,
            soft_deadline=settings.soft_deadline(d.gap.effort),
            exit_code=exit_code,
            exited_for=now - flight.exited_at if flight.exited_at is not None else 0.0,
            exit_grace=settings.exit_grace,
            agent_error=str(report.get("subtype") or "error") if report_failed(report) else "",
            pr=self._prs.get(d.branch),
            done_elsewhere=d.gap.id in self._done_on_base and d.gap.status != "done",
        )

    def step(self, flight: Flight) -> bool:
        """Advance one flight; True when it finished."""
        observation = self.observe(flight)
        if self.stopping and flight.stop_outcome is None:  # started just before the signal
            flight.stop_outcome = Outcome("killed", reason=self.stopping, cause="interrupted")
        if flight.stop_outcome is not None:
            return self._ladder(flight, observation)
        decision = decide(observation)
        if decision.action == FINISH and decision.outcome is not None:
            return self._finish(flight, decision.outcome, observation)
        if decision.action == STOP and decision.outcome is not None:
            flight.stop_outcome = decision.outcome
            return self._ladder(flight, observation)
        self._flag(flight, self._state(flight, decision.stalled))
        return False

    def _state(self, flight: Flight, stalled: bool) -> str:
        """What a dispatch still in flight is doing, for status and progress."""
        if flight.exited_at is not None:
            return "awaiting-pr"  # the agent finished; its PR decides
        return "stalled" if stalled else "silent" if self._silent(flight) else "running"

    def _flag(self, flight: Flight, state: str) -> None:
        """Record a dispatch's state (running / silent / stalled / awaiting-pr) on change."""
        if flight.state != state:
            flight.state = state
            if flight.dispatch.dispatch_id is not None:
                self.store.update_dispatch(flight.dispatch.dispatch_id, state=state)
            self.progress.flag(flight.dispatch.gap.id, state)

    def _silent(self, flight: Flight) -> bool:
        silent_in = self._silent_in(flight)
        return silent_in is not None and silent_in < 0

    def _silent_in(self, flight: Flight) -> float | None:
        """Seconds until a running agent counts as silent (negative: it is); None: not running.

        Liveness is the agent's own output, on the monotonic clock its handle reports.
        """
        handle = flight.dispatch.handle
        if handle is None or flight.exited_at is not None:
            return None
        quiet = time.monotonic() - handle.last_activity()
        return self.app.settings.silence_alert - quiet

    def _ladder(self, flight: Flight, observation: Observation) -> bool:
        """SIGTERM to the agent's group, ``kill_grace`` later SIGKILL; finish once it exited."""
        handle, now = flight.dispatch.handle, self.clock.now()
        assert flight.stop_outcome is not None
        if observation.exit_code is not None or handle is None:
            return self._finish(flight, flight.stop_outcome, observation)
        if flight.term_sent_at is None:
            handle.terminate()
            flight.term_sent_at = now
        elif not flight.kill_sent and now - flight.term_sent_at >= self.app.settings.kill_grace:
            handle.kill()
            flight.kill_sent = True
        return False

    def _finish(self, flight: Flight, outcome: Outcome, observation: Observation) -> bool:
        self.flights.remove(flight)
        siblings = max(self._tick_in_flight - 1, 0)  # others in flight at the top of the tick
        self.finisher.finish(flight, outcome, observation.exit_code, siblings)
        return True

    def _timeout(self) -> float:
        now, settings = self.clock.now(), self.app.settings
        waits = [self._next_poll - now]
        for flight in self.flights:
            if flight.term_sent_at is not None and not flight.kill_sent:
                waits.append(flight.term_sent_at + settings.kill_grace - now)
            due = next_due(self.observe(flight))
            if due is not None:
                waits.append(due + 0.001)
            silent_in = self._silent_in(flight)
            if silent_in is not None and silent_in > 0:  # wake to flag it when it falls due
                waits.append(silent_in + 0.001)
        if self.progress.live:
            waits.append(1.0)  # keep the live status line's clock moving
        return max(0.0, min(waits))

    def in_flight_ids(self) -> Sequence[str]:
        return [f.dispatch.gap.id for f in self.flights]
