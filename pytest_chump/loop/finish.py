"""Ends dispatches: the one reflection per outcome, the outcome hooks, and the teardown.

Order matters for crash safety: the outcome and its reflection are committed together
first (so a restart never writes a second one), then plugins hear of it, then the agent's
process group, worktree and lease are cleaned up — committing leftover work first.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pytest_chump.core.crashpoints import crash_point
from pytest_chump.core.model import CIRCUIT_CAUSES, Gap
from pytest_chump.core.plugins import call_event
from pytest_chump.core.records import Outcome, Reflection
from pytest_chump.core.redact import NOTES_LIMIT, bounded, known_secrets
from pytest_chump.dispatch.dispatcher import Flight
from pytest_chump.loop.app import App
from pytest_chump.loop.events import notify
from pytest_chump.loop.progress import Progress
from pytest_chump.loop.react import (
    CIRCUIT,
    FEEDBACK,
    NEEDS_HUMAN,
    RESUME,
    RETRY,
    TRANSIENT,
    Chain,
    react,
)
from pytest_chump.loop.workers import Pending, Workers
from pytest_chump.reflect.causes import evidence_line
from pytest_chump.reflect.record import build as build_reflection
from pytest_chump.reflect.usage import usage_of
from pytest_chump.state.reactions import Followup
from pytest_chump.state.rows import HoldRow, RetryRow
from pytest_chump.state.store import Store


@dataclass
class Finisher:
    app: App
    store: Store
    progress: Progress
    owner: str
    now: Callable[[], float]
    remove_workspace: Callable[[Flight], str]
    counts: Counter[str] = field(default_factory=Counter)
    shipped: set[str] = field(default_factory=set)
    rows: list[tuple[str, str, Outcome]] = field(default_factory=list)
    reflect: bool = True
    torn_down: list[Flight] = field(default_factory=list)
    circuits_said: set[str] = field(default_factory=set)
    feedback_of: Callable[[Flight, Outcome], str] | None = None
    """What the next attempt should know about a failed one (see ``Orchestrator``)."""
    workers: Workers | None = None
    """Where worktrees are removed (None: on the loop thread)."""
    tearing: Pending[Flight, str] = field(default_factory=Pending)
    freed_at: list[float] = field(default_factory=list)
    """When (monotonic) each slot freed that no new agent has taken yet (refill latency)."""
    _started: list[int] = field(default_factory=list)  # dispatch id of each row

    def finish(
        self, flight: Flight, outcome: Outcome, exit_code: int | None, siblings: int
    ) -> None:
        """Record ``outcome`` for ``flight`` exactly once, tell plugins, tear down."""
        d, handle = flight.dispatch, flight.dispatch.handle
        secrets = self.secrets()  # gathered once for the reason and the reflection
        # the reason may quote an agent, a check or a plugin: redacted and one bounded line
        outcome = dataclasses.replace(outcome, reason=self._one_line(outcome.reason, secrets))
        record = build_reflection(
            gap_id=d.gap.id,
            effort=d.gap.effort,
            backend=d.backend,
            outcome=outcome,
            duration_s=self.now() - d.started_at,
            parallel_siblings=siblings,
            tail=handle.stderr_tail() if handle else (),
            report=handle.report() if handle else {},
            model=d.model,
            exit_code=exit_code,
            failing_checks=outcome.failing_checks,
            dispatch_id=d.dispatch_id,
            secrets=secrets,
            attempt=Chain.from_meta(d.meta).attempt,
            previous_dispatch_id=_int_or_none(d.meta.get("previous_id")),
        )
        assert d.dispatch_id is not None
        # one cause per dispatch: the row says what its reflection says (classified)
        fields: dict[str, object] = {
            "pr_number": outcome.pr_number,
            "reason": outcome.reason,
            "cause": record.cause,
            **usage_of(handle.report() if handle else {}).columns(),
        }
        followup = self._followup(flight, outcome, record) if self.reflect else Followup()
        crash_point("finish.decided")
        if not self.reflect:
            self.store.finish_dispatch(d.dispatch_id, outcome.name, exit_code=exit_code, **fields)
            self.progress.finished(flight, outcome, record.cause, record.duration_s)
        elif self.store.finish_with_reflection(
            d.dispatch_id, record, followup, exit_code=exit_code, **fields
        ):
            crash_point("finish.recorded")
            self.progress.finished(flight, outcome, record.cause, record.duration_s)
            self._reflected(record)  # written with the outcome; the sinks get it below
            self._announce(d.gap.id, followup)
            if outcome.name == "shipped":
                pr = f" (PR #{outcome.pr_number})" if outcome.pr_number is not None else ""
                self._notify(
                    "gap-shipped",
                    f"{d.gap.id} shipped{pr}",
                    gap_id=d.gap.id,
                    pr_number=outcome.pr_number,
                    dispatch_id=d.dispatch_id,
                )
            call_event(
                self.app.pm,
                "chump_outcome",
                self.progress.warn,
                dispatch=flight.dispatch,
                outcome=outcome,
            )
            self.deliver(record, list(self.app.settings.sinks))
            crash_point("finish.delivered")
        else:
            row = self.store.dispatch(d.dispatch_id)
            if row is not None and row.owner != self.owner:  # taken over while we were silent
                self.progress.line(f"LOST: {d.gap.id} (taken over by {row.owner})")
                return  # the other orchestrator ended it: its teardown, not ours
        self._count(d.gap.id, d.branch, outcome, d.dispatch_id)
        self.freed_at.append(time.monotonic())
        self.torn_down.append(flight)

    def teardown_pending(self) -> bool:
        """Tear down finished flights; the loop calls this after refilling the freed slots,
        so the next agent does not wait for the last one's worktree to be removed (which a
        worker does, when there are workers). Whether any teardown completed (their gaps
        are free now: a retry of one may start)."""
        done = False
        while self.torn_down:
            flight = self.torn_down.pop(0)
            self._stop_agent(flight)
            if self.workers is None:
                self._removed(flight, self.remove_workspace(flight))
                done = True
            else:
                self.tearing.add(flight, self.workers.submit(self._remover(flight)))
        for flight, future in self.tearing.done():
            self._removed(flight, future.result())
            done = True
        return done

    def _remover(self, flight: Flight) -> Callable[[object], str]:
        def remove(_store: object) -> str:
            return self.remove_workspace(flight)

        return remove

    def tearing_down(self) -> int:
        """Worktrees a worker is still removing."""
        return len(self.tearing)

    def spawn_failed(
        self,
        gap: Gap,
        backend: str,
        reason: str,
        dispatch_id: int | None,
        cause: str = "spawn-failed",
        arm: str = "",
        owed: RetryRow | None = None,
    ) -> None:
        """A dispatch that never started: count it; if it was recorded, end it as killed. A
        spawner whose program is missing opens its arm's circuit (``arm``). A retry it was
        (``owed``) is owed again, with its feedback, written with the outcome."""
        self.counts["spawn_failures"] += 1
        reason = self._one_line(reason)
        if cause in CIRCUIT_CAUSES and arm:
            self._open_circuit(arm, reason)
        if dispatch_id is None:
            return
        outcome = Outcome("killed", reason=reason, cause=cause)
        record = build_reflection(
            gap_id=gap.id,
            effort=gap.effort,
            backend=backend,
            outcome=outcome,
            duration_s=0,
            parallel_siblings=0,
            dispatch_id=dispatch_id,
            secrets=self.secrets(),
        )
        again = None
        if owed is not None:
            now = self.now()
            again = dataclasses.replace(
                owed, kind="resume", previous_id=dispatch_id, not_before=now
            )
            again = dataclasses.replace(again, created_at=now)
        followup = Followup(retry=again)
        if self.store.finish_with_reflection(
            dispatch_id, record, followup, reason=reason, cause=record.cause
        ):
            self.progress.events.emit(
                "outcome",
                dispatch_id=dispatch_id,
                gap_id=gap.id,
                backend=backend,
                outcome="killed",
                cause=record.cause,
                reason=reason,
                duration_s=0.0,
            )
            self._reflected(record)
            self.deliver(record, list(self.app.settings.sinks))

    def _followup(self, flight: Flight, outcome: Outcome, record: Reflection) -> Followup:
        """Retry, hold for a human or open a circuit, as ``loop.react`` says; written with
        the outcome, so a restart neither loses nor repeats the next attempt."""
        d, s = flight.dispatch, self.app.settings
        reaction = react(
            outcome.name,
            record.cause,
            Chain.from_meta(d.meta),
            retries=s.retries,
            retry_transient=s.retry_transient,
            base=s.retry_backoff,
            cap=s.retry_backoff_max,
        )
        if reaction.kind == CIRCUIT:
            handle = d.handle
            tail = handle.stderr_tail() if handle else []
            said = evidence_line(record.cause, tail, handle.report() if handle else {})
            arm = str(d.meta.get("arm") or d.backend)
            return Followup(circuit=(arm, self._one_line(said or outcome.reason)))
        if reaction.kind not in (NEEDS_HUMAN, RETRY):
            return Followup()
        feedback = (
            str(d.meta.get("feedback") or "") if reaction.retry in (RESUME, TRANSIENT) else ""
        )
        if (reaction.kind == NEEDS_HUMAN or reaction.retry == FEEDBACK) and self.feedback_of:
            feedback = bounded(self.feedback_of(flight, outcome), NOTES_LIMIT, self.secrets())
        now = self.now()  # the wall clock (when not simulated): deadlines outlive this process
        if reaction.kind == NEEDS_HUMAN or reaction.chain is None:
            hold = HoldRow(d.gap.id, reaction.reason, d.dispatch_id, now, record.cause, feedback)
            return Followup(hold=hold)
        nxt = reaction.chain
        retry = RetryRow(
            d.gap.id,
            reaction.retry,
            str(d.meta.get("retry_cause") or record.cause)
            if reaction.retry == RESUME
            else record.cause,
            now + reaction.delay,
            d.dispatch_id,
            nxt.attempt,
            nxt.feedback_n,
            nxt.transient_n,
            feedback,
            now,
        )
        return Followup(retry=retry)

    def _reflected(self, record: Reflection) -> None:
        self.progress.events.emit(
            "reflection",
            dispatch_id=record.dispatch_id,
            gap_id=record.gap_id,
            backend=record.backend,
            outcome=record.outcome,
            cause=record.cause or None,
            attempt=record.attempt,
        )

    def _announce(self, gap_id: str, followup: Followup) -> None:
        events = self.progress.events
        if followup.retry is not None:
            r = followup.retry
            wait = r.not_before - r.created_at
            when = f"in {wait:g}s" if wait > 0 else "now"
            self.progress.line(f"RETRY: {gap_id} attempt {r.attempt} {when} ({r.cause})")
            events.emit(
                "retry",
                gap_id=gap_id,
                attempt=r.attempt,
                kind=r.kind,
                cause=r.cause,
                not_before=r.not_before,
                previous_dispatch_id=r.previous_id,
            )
        if followup.hold is not None:
            hold = followup.hold
            reason = hold.reason
            self.progress.line(
                f"NEEDS-HUMAN: {gap_id}: {reason} (`chump retry {gap_id}` lets it go on)"
            )
            events.emit(
                "needs-human",
                gap_id=gap_id,
                reason=reason,
                cause=hold.cause or None,
                dispatch_id=hold.dispatch_id,
            )
            self._notify("needs-human", f"{gap_id} needs a human: {reason}", gap_id=gap_id)
        if followup.circuit is not None:
            self._circuit_opened(*followup.circuit)

    def _open_circuit(self, arm: str, message: str) -> None:
        line = self._one_line(message)
        if self.store.open_circuit(arm, self.owner, line):
            self._circuit_opened(arm, line)

    def _circuit_opened(self, arm: str, line: str) -> None:
        if arm in self.circuits_said:
            return  # said once per run, however many dispatches hit it
        self.circuits_said.add(arm)
        self.progress.line(f"CIRCUIT: {arm} open: {line}")
        self.progress.events.emit("circuit", arm=arm, message=line)
        self._notify("circuit-open", f"{arm}: {line}", arm=arm)

    def _notify(self, name: str, message: str, **fields: object) -> None:
        notify(self.app, self.progress, name, message, **fields)

    def _one_line(self, message: str, secrets: list[str] | None = None) -> str:
        """``message`` redacted (of ``secrets``, default :meth:`secrets`), its lines joined,
        bounded (the full text is in the logs)."""
        secrets = self.secrets() if secrets is None else secrets
        return bounded(" ".join(message.split()), secrets=secrets)

    def secrets(self) -> list[str]:
        """What to redact: this process's secret-named variables and the configuration's."""
        return known_secrets(self.app.settings.configured_secrets())

    def deliver(self, record: Reflection, names: Sequence[str]) -> None:
        """Hand ``record`` to each named sink; one failing sink never stops the others."""
        sinks = self.app.sinks()
        for name in names:
            try:
                sinks[name].write(record)
            except Exception as exc:  # a sink's failure is logged; delivery is retried later
                self.progress.warn(f"sink {name!r} failed: {type(exc).__name__}: {exc}")
                continue
            if record.dispatch_id is not None:
                self.store.mark_delivered(record.dispatch_id, name)
        call_event(self.app.pm, "chump_reflect", self.progress.warn, reflection=record)

    def redeliver(self) -> None:
        """Deliver reflections a sink missed (it failed, or the process died before it ran)."""
        for record, missing in self.store.undelivered(self.app.settings.sinks):
            self.deliver(record, missing)

    def _stop_agent(self, flight: Flight) -> None:
        handle = flight.dispatch.handle
        if handle is not None:
            handle.kill()  # stragglers left in the agent's process group
            handle.close()
        crash_point("teardown.agent-stopped")

    def _removed(self, flight: Flight, problem: str) -> None:
        """Its worktree is gone (or kept, ``problem`` says why): now its lease goes."""
        if problem:
            self.progress.warn(f"kept worktree {flight.dispatch.worktree}: {problem}")
        crash_point("teardown.worktree-removed")
        self.store.release_lease(flight.dispatch.gap.id, self.owner)
        crash_point("teardown.lease-released")

    def in_dispatch_order(self) -> list[tuple[str, str, Outcome]]:
        """``rows`` (gap, branch, outcome) in the order the dispatches started."""
        order = sorted(range(len(self.rows)), key=lambda i: self._started[i])
        return [self.rows[i] for i in order]

    def _count(self, gap_id: str, branch: str, outcome: Outcome, dispatch_id: int | None) -> None:
        self.counts[outcome.name] += 1
        self.rows.append((gap_id, branch, outcome))
        self._started.append(dispatch_id if dispatch_id is not None else len(self.rows) + 10**12)
        if outcome.name == "shipped":
            self.shipped.add(gap_id)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
