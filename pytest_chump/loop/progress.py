"""What the orchestrator prints: dispatch lines, outcomes, flags, the summary and totals.

Plain lines always (logs and pipes stay readable); on a terminal a block with one line per
dispatch in flight (gap, backend, elapsed, state) is redrawn in place under them.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from pytest_chump.core.records import Outcome
from pytest_chump.core.redact import printable
from pytest_chump.loop.events import Events
from pytest_chump.loop.react import Chain

if TYPE_CHECKING:
    from pytest_chump.dispatch.dispatcher import Flight

TOTALS = ("shipped", "ci_failed", "stalled", "killed", "race_abandoned", "spawn_failures")


@dataclass
class Progress:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    live: bool = False
    events: Events = field(default_factory=Events)
    """The machine-readable side of the same story (``--events``, the store)."""
    _errors: set[str] = field(default_factory=set)
    _shown: int = 0  # lines of the live block on the terminal now
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def line(self, text: str, stream: TextIO | None = None) -> None:
        """Print one line; control characters in it (from agents, providers, backlogs) are
        escaped, so no text can move the cursor, retitle the terminal or forge a line. (A
        worker thread may warn too: lines never interleave.)"""
        with self._lock:
            self._clear()
            self._write(printable(text) + "\n", stream or self.out)

    def _write(self, text: str, stream: TextIO) -> None:
        try:
            stream.write(text)
            stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            self._lose_output()  # `| head -1`, a closed terminal: supervision goes on

    def _lose_output(self) -> None:
        """Stdout (or stderr) is gone: write nowhere from now on, never stop the loop."""
        import os

        sink = open(os.devnull, "w")  # noqa: SIM115  (kept for the rest of the run)
        self.out = self.err = sink
        self.live = False

    def dispatched(self, flight: Flight) -> None:
        d = flight.dispatch
        pid = d.handle.pid if d.handle and d.handle.pid is not None else None
        where = getattr(d.handle, "where", "") or d.worktree  # an agent run elsewhere: its place
        self.line(f"DISPATCHED: {d.gap.id} in {where} as PID {pid or '<no-pid>'}")
        self.events.emit(
            "dispatched",
            dispatch_id=d.dispatch_id,
            gap_id=d.gap.id,
            backend=d.backend,
            model=d.model,
            arm=d.meta.get("arm"),
            attempt=Chain.from_meta(d.meta).attempt,
            branch=d.branch,
            worktree=str(d.worktree),
            pid=pid,
            effort=d.gap.effort,
            priority=d.gap.priority,
        )

    def dispatch_failed(self, gap_id: str, reason: str) -> None:
        self.line(f"DISPATCH-FAILED: {gap_id}: {reason}", self.err)
        self.events.emit("dispatch-failed", gap_id=gap_id, reason=reason)

    def finished(
        self, flight: Flight, outcome: Outcome, cause: str = "", duration_s: float | None = None
    ) -> None:
        d = flight.dispatch
        pr = f" PR #{outcome.pr_number}" if outcome.pr_number is not None else ""
        why = f" ({outcome.reason})" if outcome.reason else ""
        self.line(f"OUTCOME: {d.gap.id} {outcome.name}{pr}{why}")
        self.events.emit(
            "outcome",
            dispatch_id=d.dispatch_id,
            gap_id=d.gap.id,
            backend=d.backend,
            outcome=outcome.name,
            cause=cause or outcome.cause or None,
            reason=outcome.reason or None,
            pr_number=outcome.pr_number,
            duration_s=None if duration_s is None else round(duration_s, 3),
        )

    def flag(self, flight: Flight, state: str) -> None:
        """A dispatch in flight changed state (running / silent / stalled / awaiting-pr)."""
        d = flight.dispatch
        self.line(f"STATE: {d.gap.id} {state}")
        self.events.emit("state", dispatch_id=d.dispatch_id, gap_id=d.gap.id, state=state)

    def warn(self, message: str) -> None:
        self.line(f"chump: warning: {message}", self.err)

    def provider_error(self, message: str) -> None:
        """Transient provider trouble: said once per distinct message, then retried quietly."""
        if message not in self._errors:
            self._errors.add(message)
            self.line(f"chump: warning: PR provider: {message} (will retry)", self.err)

    def status(self, flights: Sequence[Flight]) -> None:
        """Redraw the live block, one line per dispatch in flight (terminals only)."""
        if not self.live:
            return
        now = time.time()
        rows = [
            f"  {f.dispatch.gap.id:<16} {f.dispatch.backend:<10} "
            f"{elapsed(now - f.dispatch.started_at):>8}  {f.state}"
            for f in flights
        ]
        with self._lock:
            self._clear()
            self._write("".join(printable(row) + "\n" for row in rows), self.out)
            self._shown = len(rows) if self.live else 0

    def _clear(self) -> None:
        """Erase the live block (cursor up over its lines, clear to the end of the screen)."""
        if self._shown:
            shown, self._shown = self._shown, 0
            self._write(f"\033[{shown}F\033[J", self.out)

    def summary(self, rows: Sequence[tuple[str, str, Outcome]], counts: Counter[str]) -> None:
        self.line("")
        self.line(f"=== monitor summary ({len(rows)} entries) ===")
        for _gap_id, branch, outcome in rows:
            label = outcome.name.upper().replace("_", "-")
            pr = f"PR #{outcome.pr_number}" if outcome.pr_number is not None else ""
            detail = pr if outcome.name in ("shipped", "ci_failed") and pr else outcome.reason
            self.line(f"  {label:<14} {branch}  {detail}".rstrip())
        self.line("  ".join(f"{name}={counts.get(name, 0)}" for name in TOTALS))


def elapsed(seconds: float) -> str:
    """``12m05s`` or ``2h03m07s``."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
