"""Watching the dispatches in flight: what each one is doing, and when it is over.

Per tick of the loop, each flight is observed (agent exit, its PR as the provider last
reported it, elapsed time), the pure :func:`~pytest_chump.loop.decide.decide` says what
happens, and the monitor carries it out: flag a state, walk the stop ladder (SIGTERM, grace,
SIGKILL) or finish. It also says when the loop must wake next: the next poll or deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_chump.backlog.at_ref import done_on_base
from pytest_chump.core.config import Settings
from pytest_chump.core.crashpoints import crash_point
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.protocols import PrProvider, PrStatus, Watch
from pytest_chump.core.records import Outcome
from pytest_chump.dispatch.dispatcher import Flight
from pytest_chump.loop.decide import FINISH, STOP, Observation, decide, next_due
from pytest_chump.loop.finish import Finisher
from pytest_chump.loop.progress import Progress
from pytest_chump.reflect.causes import report_failed
from pytest_chump.state.store import Store

LADDER_RECHECK = 0.5  # seconds between looks at an agent being stopped that cannot wake us


@dataclass
class Monitor:
    """Advances flights; owns what the PR provider last said about them."""

    settings: Settings
    store: Store
    provider: PrProvider
    progress: Progress
    finisher: Finisher
    now: Callable[[], float]
    next_poll: float = 0.0
    _prs: dict[str, PrStatus] = field(default_factory=dict)
    _done_on_base: frozenset[str] = frozenset()
    _tick_in_flight: int = 0
    _answered_at: float = float("-inf")  # when the provider last answered a poll
    on_silent: Callable[[Flight], None] | None = None  # an agent just fell silent
    on_polled: Callable[[float], None] | None = None  # seconds one provider poll took
    monotonic: Callable[[], float] = time.monotonic  # the clock of handles' last_activity
    base_done: Callable[[], frozenset[str]] | None = None
    """Gap ids marked done on the base branch (default: read with git at ``base_ref``)."""

    def status_of(self, branch: str) -> PrStatus | None:
        """What the PR provider last said about ``branch``."""
        return self._prs.get(branch)

    def soon(self) -> None:
        """Poll the provider at the next tick (a new dispatch, or an agent that just exited)."""
        self.next_poll = self.now()

    def poll(self, flights: list[Flight]) -> None:
        """Ask the provider about every flight, when a poll is due; its errors never stop us."""
        now = self.now()
        if now < self.next_poll or not flights:
            return
        self.next_poll = now + self.settings.poll_interval
        # the base is read before the provider: a merge landing in between (its "gap done"
        # included) then shows as MERGED, never as someone else's change (a race lost)
        s = self.settings
        aliases = s.status_aliases
        self._done_on_base = (
            self.base_done()
            if self.base_done is not None
            else done_on_base(s.repo_root, s.base_ref, s.backlog_path, aliases)
        )
        watches = [self._watch_of(f) for f in flights]
        start = time.monotonic()
        try:
            self._prs = dict(self.provider.poll(watches))
            if not getattr(self.provider, "stale", False):  # answered from an earlier look
                self._answered_at = now
        except ChumpError as exc:
            self.progress.provider_error(str(exc))
        except Exception as exc:  # a provider plugin's bug must not stop every agent's watch
            self.progress.provider_error(f"{type(exc).__name__}: {exc}")
        if self.on_polled is not None:
            self.on_polled(time.monotonic() - start)
        crash_point("watch.polled")

    def _watch_of(self, flight: Flight) -> Watch:
        d = flight.dispatch
        finished = flight.exited_at is not None
        code = (d.handle.poll() if d.handle else 0) if finished else None
        return Watch(d.branch, d.gap.id, flight.base_sha, d.worktree, finished, code)

    def tick(self, flights: list[Flight], stopping: str) -> int:
        """Advance every flight once; finished ones leave ``flights``. How many finished."""
        self._tick_in_flight = len(flights)
        finished = 0
        for flight in list(flights):
            if self.step(flight, stopping):
                flights.remove(flight)
                finished += 1
        return finished

    def observe(self, flight: Flight) -> Observation:
        d, now, settings = flight.dispatch, self.now(), self.settings
        exit_code = d.handle.poll() if d.handle else 0
        if exit_code is not None and flight.exited_at is None:
            flight.exited_at = now
            self.next_poll = now  # an agent finished: its PR is worth a look now
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
            asked_since_exit=flight.exited_at is not None and self._answered_at >= flight.exited_at,
            ended_by=str(report.get("ended_by") or "") if exit_code is not None else "",
            ended_why=str(report.get("ended_why") or ""),
        )

    def step(self, flight: Flight, stopping: str = "") -> bool:
        """Advance one flight; True when it finished."""
        observation = self.observe(flight)
        if stopping and flight.stop_outcome is None:  # started just before the signal
            flight.stop_outcome = Outcome("killed", reason=stopping, cause="interrupted")
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
            self.progress.flag(flight, state)
            if state == "silent" and self.on_silent is not None:
                self.on_silent(flight)

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
        quiet = self.monotonic() - handle.last_activity()
        return self.settings.silence_alert - quiet

    def _ladder(self, flight: Flight, observation: Observation) -> bool:
        """SIGTERM to the agent's group, ``kill_grace`` later SIGKILL; finish once it exited."""
        handle, now = flight.dispatch.handle, self.now()
        assert flight.stop_outcome is not None
        if observation.exit_code is not None or handle is None:
            return self._finish(flight, flight.stop_outcome, observation)
        if flight.term_sent_at is None:
            handle.terminate()
            flight.term_sent_at = now
        elif not flight.kill_sent and now - flight.term_sent_at >= self.settings.kill_grace:
            handle.kill()
            flight.kill_sent = True
        return False

    def _finish(self, flight: Flight, outcome: Outcome, observation: Observation) -> bool:
        siblings = max(self._tick_in_flight - 1, 0)  # others in flight at the top of the tick
        self.finisher.finish(flight, outcome, observation.exit_code, siblings)
        return True

    def timeout(self, flights: list[Flight]) -> float:
        """Seconds the loop may sleep: until the next poll, kill, deadline or silence flag.

        A flight being stopped waits only for its kill time (or its agent's exit, which wakes
        the loop; an adopted agent cannot, so it is looked at every ``LADDER_RECHECK``).
        """
        now, settings = self.now(), self.settings
        waits = [settings.lease_ttl / 4]  # beat before anyone takes over
        if flights:  # (with none, a poll is never due: nothing to ask about)
            waits.append(self.next_poll - now)
        for flight in flights:
            if flight.stop_outcome is not None:  # decided already: only the ladder's clock
                if flight.term_sent_at is not None and not flight.kill_sent:
                    waits.append(flight.term_sent_at + settings.kill_grace - now)
                waits.append(LADDER_RECHECK)
                continue
            due = next_due(self.observe(flight))
            if due is not None:
                waits.append(due + 0.001)
            silent_in = self._silent_in(flight)
            if silent_in is not None and silent_in > 0:  # wake to flag it when it falls due
                waits.append(silent_in + 0.001)
        if self.progress.live:
            waits.append(1.0)  # keep the live status line's clock moving
        return max(0.0, min(waits))
