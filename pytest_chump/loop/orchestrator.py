"""The orchestrator loop: keep slots full, watch agents and PRs, finish each dispatch once.

Continuous, not in rounds: when a dispatch ends, the gaps it unblocked and the freed slot
are filled at once. The loop sleeps on an event that agents' handles set when they exit or
print, with a timeout that is the next provider poll or deadline — never a fixed tick.
Starting work is here; watching it is :mod:`~pytest_chump.loop.monitor`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_chump.backlog import Backlog
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.model import Gap
from pytest_chump.core.protocols import PrProvider, Spawner, SpawnHandle
from pytest_chump.core.records import Arm, Outcome
from pytest_chump.core.redact import bounded
from pytest_chump.dispatch.dispatcher import CapacityFull, Dispatcher, DispatchFailed, Flight
from pytest_chump.dispatch.prompt import load_template
from pytest_chump.dispatch.workspaces import Workspaces, git_workspaces
from pytest_chump.learn.routing import candidates, choose_arm, load_table
from pytest_chump.loop.app import App
from pytest_chump.loop.attempts import Attempts
from pytest_chump.loop.budget import budget_reached
from pytest_chump.loop.clock import Clock
from pytest_chump.loop.events import notify
from pytest_chump.loop.finish import Finisher
from pytest_chump.loop.heartbeat import Heartbeat
from pytest_chump.loop.monitor import Monitor
from pytest_chump.loop.progress import Progress
from pytest_chump.loop.resume import adopt_orphans
from pytest_chump.loop.timings import Timings
from pytest_chump.loop.workers import Pending, Workers
from pytest_chump.reflect.notify import check as check_notify
from pytest_chump.state.liveness import make_owner
from pytest_chump.state.rows import RetryRow
from pytest_chump.state.store import Store


@dataclass(frozen=True, slots=True)
class Starting:
    """A dispatch a worker is starting: what the loop needs when it is done or failed."""

    gap: Gap
    arm: Arm
    retry: RetryRow | None


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
    workspaces: Workspaces | None = None
    heartbeat: bool = True  # beat from a thread too (a store in a real repository)

    def __post_init__(self) -> None:
        self._last_beat = float("-inf")
        self.store.lease_ttl = self.app.settings.lease_ttl
        self.app.sinks()  # an unknown sink name fails now, before anything is dispatched
        self.started_at = self.store.register_owner(self.owner)
        events = self.progress.events
        events.attach(self.store, self.owner, str(self.app.settings.repo_root))
        events.warn = events.warn or self.progress.warn
        self.timings = Timings(save=lambda body: self.store.save_timings(self.owner, body))
        self.dispatcher = Dispatcher(
            self.app.settings,
            self.store,
            self.app.pm,
            self.owner,
            self.spawner,
            self.clock.now,
            self.workspaces or git_workspaces(self.app.settings, self.progress.warn),
            self.wake.set,
            self.progress.warn,
        )
        self.finisher = Finisher(
            self.app, self.store, self.progress, self.owner, self.clock.now, self.dispatcher.remove
        )
        self.finisher.feedback_of = self._feedback
        self.blocked: dict[str, str] = {}  # gap id -> why no arm could take it (open circuits)
        self.attempts = Attempts.read(self.store, self.clock.now())
        self.offered: set[str] = set()  # due retries the last refill tried to start
        self.failed_to_start: set[str] = set()  # not offered again in this run
        self.budget_reached = ""  # why nothing new starts any more, once a budget is spent
        self.progressed = time.monotonic()  # the loop's last step (the heartbeat watches it)
        self.monitor = Monitor(
            self.app.settings,
            self.store,
            self.provider,
            self.progress,
            self.finisher,
            self.clock.now,
            monotonic=self.clock.monotonic,
        )
        self.workers = self._workers()
        self.finisher.workers = self.workers
        self.starting: Pending[Starting, tuple[Flight | None, float]] = Pending()
        self.monitor.on_silent = self._silent
        self.monitor.on_polled = lambda took: self.timings.observe("provider_poll_seconds", took)
        check_notify(self.app.settings.notify)  # a bad [tool.chump.notify] fails before dispatch
        self.backlog: Backlog | None = None
        if hasattr(self.provider, "notify"):  # e.g. the merge gate: wake when it finishes
            self.provider.notify = self.wake.set
        self.routes = load_table(self.app.settings)
        self._check_arms()
        load_template(self.app.settings)  # a bad prompt template fails before any dispatch

    def _workers(self) -> Workers | None:
        """The pool that starts and ends dispatches off the loop thread (None: on it — with
        ``dispatch_workers = 0``, or a store in memory, which other threads cannot open)."""
        size, db = self.app.settings.dispatch_workers, self.store.path
        if size <= 0 or db == Path(":memory:"):
            return None

        def configure(store: Store) -> None:
            store.lease_ttl, store.clock = self.store.lease_ttl, self.store.clock

        return Workers(size, self.wake.set, db, configure)

    def _check_arms(self) -> None:
        """Every spawner the routing table names must exist, before anything is dispatched."""
        arms = {a for rule in self.routes.rules for a in rule.arms} | set(self.routes.default)
        for arm in sorted(arms, key=lambda a: a.label):
            self.spawner(arm.spawner)  # an unknown name fails listing the valid ones

    def _silent(self, flight: Flight) -> None:
        gap = flight.dispatch.gap.id
        silence = self.app.settings.silence_alert
        notify(
            self.app,
            self.progress,
            "agent-silent",
            f"{gap}: no output for {silence:g}s",
            gap_id=gap,
        )

    def preflight(self) -> None:
        """Before the first agent starts: the PR provider proves it can work and every
        spawner that could take one of the backlog's open gaps finds its binary; else one
        line, exit 2."""
        check = getattr(self.provider, "preflight", None)
        if callable(check):
            check()
        gaps = self.backlog.gaps if self.backlog is not None else ()
        open_gaps = [g for g in gaps if g.status != "done"]
        arms = {arm for gap in open_gaps for arm in candidates(self.routes, gap)}
        for name in sorted({arm.spawner for arm in arms}):
            ready = getattr(self.spawner(name), "preflight", None)
            if callable(ready):
                ready(os.environ)

    # --- the loop -------------------------------------------------------------------

    def run(self) -> None:
        """Dispatch and (with ``watch``) watch until nothing is in flight and nothing is ready."""
        root, ttl = self.app.settings.repo_root, self.app.settings.lease_ttl
        try:
            if self.heartbeat and (root / ".chump").is_dir():
                setup_timeout = self.dispatcher.setup.timeout if self.dispatcher.setup else 0.0
                quiet = max(3 * setup_timeout, 10 * ttl)  # the longest healthy step
                with Heartbeat(root, self.owner, ttl / 4, lambda: self.progressed, quiet):
                    self._run()
            else:
                self._run()
        finally:
            if self.workers is not None:
                self.workers.close()  # what a worker still does finishes first
                self.workers = self.finisher.workers = None
        self._flush_timings(force=True)

    def _flush_timings(self, force: bool = False) -> None:
        try:
            self.timings.flush(force)
        except ChumpError as exc:  # a full disk: timings are not worth stopping for
            self.progress.warn(f"timings not saved: {exc.lines()[0]}")

    def _run(self) -> None:
        if self.backlog is None:  # the caller may have read it already
            self.backlog = self.app.load_backlog()
        self.finisher.redeliver()
        if self.watch:
            self.adopt()
        while True:
            self.progressed = time.monotonic()
            self._reload_if_nudged()
            self._keep_ownership()
            self._collect_starts()
            if not self.stopping:
                self.refill()
            freed = self.finisher.teardown_pending()
            if not self.watch:
                self._drain_starts()
                return
            working = len(self.starting) or self.finisher.tearing_down()
            if not self.flights and not working and not self.nudged.is_set():
                if not (freed and not self.stopping) and not self._wait_for_retry():
                    return
                continue  # a gap just torn down may have its retry due: refill again
            self.monitor.poll(self.flights)
            finished = self.monitor.tick(self.flights, self.stopping)
            self.progress.status(self.flights)
            self._flush_timings()
            if not finished:
                self.clock.wait(self.wake, self.monitor.timeout(self.flights))

    def _keep_ownership(self) -> None:
        """Beat (so nobody takes over while this orchestrator is alive); let go of flights a
        live one took over while this one was silent (stopped, hung); and, watching, adopt
        the dispatches of one that fell silent — all at most every ``lease_ttl / 4``."""
        now = time.monotonic()
        if now - self._last_beat < self.app.settings.lease_ttl / 4:
            return
        self._last_beat = now
        self.store.heartbeat(self.owner)
        owners = {row.id: row.owner for row in self.store.unfinished()}
        for flight in list(self.flights):
            taken = owners.get(flight.dispatch.dispatch_id or -1, self.owner)
            if taken != self.owner:  # not closed: its agent is someone else's to watch now
                self.flights.remove(flight)
                self.progress.line(f"LOST: {flight.dispatch.gap.id} (taken over by {taken})")
                self.progress.events.emit(
                    "lost", dispatch_id=flight.dispatch.dispatch_id, gap_id=flight.dispatch.gap.id
                )
        if self.watch and not self.stopping:
            self.adopt()

    def adopt(self) -> None:
        """Resume after a crash: take over the dispatches of orchestrators that are gone."""
        assert self.backlog is not None
        for flight in adopt_orphans(self.store, self.backlog, self.owner, self._reattach):
            self.attempted.add(flight.dispatch.gap.id)
            self.flights.append(flight)
            handle = flight.dispatch.handle
            pid = handle.pid if handle and handle.pid else None
            self.progress.line(f"RESUMED: {flight.dispatch.gap.id} (pid {pid or '-'})")
            d = flight.dispatch
            self.progress.events.emit(
                "resumed", dispatch_id=d.dispatch_id, gap_id=d.gap.id, backend=d.backend, pid=pid
            )

    def _reattach(
        self, backend: str, identity: Mapping[str, object], log: Path, record: Path | None
    ) -> SpawnHandle:
        """The handle of an agent running elsewhere, through its spawner's ``adopt``."""
        adopt = getattr(self.spawner(backend), "adopt", None)
        if adopt is None:
            raise ChumpError(f"spawner {backend!r} cannot re-attach to its agents")
        handle: SpawnHandle = adopt(identity, log, record)
        return handle

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
        self.progress.events.emit("reloaded", gaps=len(self.backlog.gaps))

    def stop(self, reason: str) -> None:
        """Stop dispatching and stop every agent (TERM, grace, KILL); called on SIGINT/SIGTERM."""
        self.stopping = reason
        for flight in self.flights:
            if flight.stop_outcome is None:
                flight.stop_outcome = Outcome("killed", reason=reason, cause="interrupted")
        self.wake.set()

    def _over_budget(self) -> bool:
        """Whether a budget is spent (once reached, for the rest of the run): said once,
        notified, and with ``on_budget = "stop"`` the running agents are stopped too."""
        if self.budget_reached:
            return True
        s = self.app.settings
        reason = budget_reached(self.store, s, self.started_at, self.owner)
        if not reason:
            return False
        self.budget_reached = reason
        self.progress.line(f"BUDGET: {reason}: nothing new is dispatched")
        self.progress.events.emit("budget", reason=reason, on_budget=s.on_budget)
        notify(self.app, self.progress, "budget-reached", reason)
        if s.on_budget == "stop":
            self.stop(f"stopped: {reason}")
        return True

    def _wait_for_retry(self) -> bool:
        """Nothing in flight: sleep until the next scheduled retry of this run falls due
        (True), or say there is none (False)."""
        if not self.watch or self.stopping:
            return False
        attempts = Attempts.read(self.store, self.clock.now())
        if set(attempts.due) - self.offered - self.failed_to_start:  # scheduled meanwhile
            return True
        due = attempts.next_due()  # (a due one already offered could not be dispatched)
        if due is None:
            return False
        self.clock.wait(self.wake, max(0.0, due - self.clock.now()))
        return True

    def _feedback(self, flight: Flight, outcome: Outcome) -> str:
        """What failed, for the next attempt's prompt: the verdict, the failing checks and
        what the PR provider can add (a check's log, review comments)."""
        branch = flight.dispatch.branch
        parts = [outcome.reason]
        if outcome.failing_checks:
            parts.append("Failing checks: " + ", ".join(outcome.failing_checks))
        extra = getattr(self.provider, "feedback", None)
        if callable(extra):
            try:
                parts.append(str(extra(branch, self.monitor.status_of(branch))))
            except Exception as exc:  # a provider's bug must not stop the finish
                self.progress.warn(f"PR provider feedback: {type(exc).__name__}: {exc}")
        return "\n\n".join(p for p in parts if p)

    def refill(self) -> None:
        """Start ready gaps while slots are free; a dispatch that fails to start is reported."""
        assert self.backlog is not None
        if self.app.settings.max_parallel - self._running() <= 0:
            return  # every slot busy: nothing to read (spending grows only as a slot frees)
        self.attempts = Attempts.read(self.store, self.clock.now())
        self.offered = set(self.attempts.due)
        if self._over_budget():
            return
        while not self.stopping and (slots := self.app.settings.max_parallel - self._running()):
            picks = self.app.pick(self.backlog, max(slots, 0), self._busy(), self._shipped())
            if not picks:
                self.finisher.freed_at.clear()  # nothing ready: an empty slot is not a slow refill
                return
            for gap in picks:
                if self.stopping:  # a signal arrived while this refill was starting agents
                    return
                try:
                    self._start(gap)
                except CapacityFull:  # another orchestrator took the last slot meanwhile
                    return
                self.attempted.add(gap.id)

    def _running(self) -> int:
        """Agents in flight in this repository: ours (and those being started), and those
        of other orchestrators (or orphaned with their agent still running) —
        ``max_parallel`` counts them all."""
        others = len(self.store.in_flight(others_than=self.owner))
        return len(self.flights) + len(self.starting) + others

    def _busy(self) -> frozenset[str]:
        """Gaps not to start now: tried by this run, leased, unfinished anywhere (an agent of
        a crashed orchestrator may still run it), or dispatched by a twin since this run's
        cohort began (see ``Store.register_owner``)."""
        since = self.store.gap_ids("started_at >= ?", (self.started_at,))
        tried = (self.attempted | since) - set(self.attempts.due)
        return frozenset(
            tried
            | set(self.store.live_leases())
            | self.store.gap_ids("outcome IS NULL")
            | self.attempts.held
            | set(self.attempts.later)
            | set(self.blocked)
            | self.failed_to_start
        )

    def _shipped(self) -> frozenset[str]:
        return self.store.shipped_ids() | self.finisher.shipped

    def _start(self, gap: Gap) -> None:
        self.progressed = time.monotonic()
        circuits = self.store.circuits()
        chosen = choose_arm(
            self.app, self.store, gap, table=self.routes, warn=self.progress.warn, closed=circuits
        )
        if chosen is None:  # every arm that could take it is broken for this run
            self.blocked[gap.id] = ", ".join(sorted(circuits))
            return
        arm, posterior = chosen
        retry = self.attempts.due.pop(gap.id, None)  # offered once per refill, started or not
        meta: dict[str, object] = {"arm": arm.label, "posterior": posterior}
        if self.workers is None:
            began = time.monotonic()
            try:
                flight = self.dispatcher.start(gap, arm.spawner, arm.model, meta, retry)
            except DispatchFailed as exc:
                self._start_failed(Starting(gap, arm, retry), exc)
                return
            finally:
                self.timings.observe("dispatch_start_seconds", time.monotonic() - began)
            if flight is not None:
                self._started(flight)
            return

        workers = self.workers

        def stopped() -> bool:
            return bool(self.stopping) or workers.closing

        def task(store: Store | None) -> tuple[Flight | None, float]:
            began = time.monotonic()
            dispatcher = dataclasses.replace(self.dispatcher, store=store or self.store)
            flight = dispatcher.start(
                gap,
                arm.spawner,
                arm.model,
                meta,
                retry,
                announce=False,  # plugins hear of it on the loop thread
                cancelled=stopped,
            )
            return flight, time.monotonic() - began

        self.starting.add(Starting(gap, arm, retry), self.workers.submit(task))

    def _collect_starts(self) -> None:
        """Take in the dispatches the workers finished starting, each as soon as it is done."""
        for starting, future in self.starting.done():
            try:
                flight, took = future.result()
            except CapacityFull:  # another orchestrator took the last slot meanwhile
                self.attempted.discard(starting.gap.id)
                continue
            except DispatchFailed as exc:
                if not (self.stopping and exc.cause == "interrupted" and exc.dispatch_id is None):
                    self._start_failed(starting, exc)
                continue
            self.timings.observe("dispatch_start_seconds", took)
            if flight is not None:
                self.dispatcher.announce(flight)
                self._started(flight)

    def _drain_starts(self) -> None:
        """Wait for the dispatches being started and take them in (a run without --watch)."""
        self.starting.wait()
        self._collect_starts()

    def _started(self, flight: Flight) -> None:
        if self.finisher.freed_at:
            freed = self.finisher.freed_at.pop(0)
            self.timings.observe("refill_latency_seconds", time.monotonic() - freed)
        if self.stopping and flight.stop_outcome is None:  # started as a signal came
            flight.stop_outcome = Outcome("killed", reason=self.stopping, cause="interrupted")
        self.flights.append(flight)
        self.monitor.soon()  # look for its PR promptly
        self.progress.dispatched(flight)

    def _start_failed(self, starting: Starting, exc: DispatchFailed) -> None:
        gap, arm, retry = starting.gap, starting.arm, starting.retry
        self.failed_to_start.add(gap.id)  # its retry, if owed, waits for the next run
        self.progress.dispatch_failed(gap.id, bounded(str(exc), secrets=self.finisher.secrets()))
        broken = arm.label if exc.binary_missing else ""  # only that opens the circuit
        owed = retry if exc.dispatch_id is not None else None  # it consumed the retry
        self.finisher.spawn_failed(
            gap, arm.spawner, str(exc), exc.dispatch_id, exc.cause, broken, owed
        )

    def in_flight_ids(self) -> Sequence[str]:
        return [f.dispatch.gap.id for f in self.flights]
