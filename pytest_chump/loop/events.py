"""What happened, told to machines: the event stream, and ``chump_notify`` for people.

Every event is one JSON object with stable names (``EVENT_NAMES``): ``event`` (its name),
``v`` (the shape's version), ``time`` (UTC, ISO 8601), ``ts`` (epoch seconds), ``repo``,
``owner`` (the orchestrator) and fields of its own (``dispatch_id``, ``gap_id``, ...). Each
goes to the store (``seq`` is its place there: ``chump serve`` streams the table) and to the
``--events`` writers, one line each. Free text in events is the redacted, bounded text the
store keeps; nothing an agent printed goes into one unfiltered.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TextIO

from pytest_chump.core.errors import ChumpError
from pytest_chump.core.plugins import call_event

if TYPE_CHECKING:
    from pytest_chump.loop.app import App
    from pytest_chump.state.telemetry import Telemetry

VERSION = 1
EVENT_NAMES = (
    "run-started",
    "dispatched",
    "dispatch-failed",
    "resumed",
    "state",
    "outcome",
    "reflection",
    "retry",
    "needs-human",
    "circuit",
    "budget",
    "notify",
    "lost",
    "reloaded",
    "run-finished",
)
"""Every event's name; a new one is added at the end, a name is never reused."""


@dataclass
class Events:
    """Where events go: the store (once an orchestrator attaches it) and line writers."""

    writers: list[TextIO] = field(default_factory=list)
    store: Telemetry | None = None
    owner: str = ""
    repo: str = ""
    warn: Callable[[str], None] | None = None
    clock: Callable[[], float] = time.time  # (a simulation's is virtual)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _store_failed: bool = False

    def attach(self, store: Telemetry, owner: str, repo: str) -> None:
        self.store, self.owner, self.repo = store, owner, repo

    def emit(self, name: str, **fields: object) -> dict[str, object]:
        """Record and write one event; a failing destination never stops the loop."""
        assert name in EVENT_NAMES, name
        now = datetime.fromtimestamp(self.clock(), UTC)
        event: dict[str, object] = {
            "v": VERSION,
            "event": name,
            "time": now.isoformat(timespec="milliseconds"),
            "ts": round(now.timestamp(), 3),
            "repo": self.repo,
            "owner": self.owner,
            **{k: v for k, v in fields.items() if v is not None},
        }
        with self._lock:
            if self.store is not None and not self._store_failed:
                try:
                    event["seq"] = self.store.add_event(self.owner, event)
                except ChumpError as exc:  # a full disk: the run goes on, said once
                    self._store_failed = True
                    self._say(f"events are no longer stored: {exc.lines()[0]}")
            if not self.writers:
                return event
            line = json.dumps(event, sort_keys=True, default=str) + "\n"
            for writer in list(self.writers):
                try:
                    writer.write(line)
                    writer.flush()
                except (OSError, ValueError) as exc:  # a closed pipe, a full disk
                    self.writers.remove(writer)
                    self._say(f"--events: {exc}; no more events are written there")
        return event

    def _say(self, message: str) -> None:
        if self.warn is not None:
            self.warn(message)


class Told(Protocol):
    """What reports an event (the loop's ``Progress`` is one)."""

    events: Events

    def warn(self, message: str) -> None: ...


def notify(app: App, told: Told, name: str, message: str, **fields: object) -> None:
    """Tell ``chump_notify`` plugins that ``name`` happened (``message``: one line), and put
    it in the event stream as a ``notify`` event."""
    kept = {k: v for k, v in fields.items() if v is not None}
    event = {
        "event": name,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "repo": str(app.settings.repo_root),
        "message": message,
        **kept,
    }
    told.events.emit("notify", notification=name, message=message, **kept)
    call_event(app.pm, "chump_notify", told.warn, event=event, settings=app.settings)
