"""The loop's clock: wall-clock time and waiting for a wake-up, in one object that tests and
simulations replace with one that does not sleep."""

from __future__ import annotations

import threading
import time


class Clock:
    """Wall-clock time and waiting; tests inject one that does not sleep."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        """The clock agents' liveness is measured on (``SpawnHandle.last_activity``)."""
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float) -> None:
        event.wait(max(0.0, timeout))
        event.clear()
