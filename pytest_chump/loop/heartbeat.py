"""An orchestrator's heartbeat, from a thread of its own: a loop busy in a long worktree
set-up, a slow ``git worktree add`` or a merge must not look dead (silent past
``lease_ttl``) and lose its dispatches to another orchestrator while it is alive."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pytest_chump.state.database import StorageError
from pytest_chump.state.store import Store


class Heartbeat:
    """Beats for ``owner`` every ``interval`` seconds until stopped (a context manager) —
    while the loop shows signs of life: ``progress()`` (its last step, on the monotonic
    clock) at most ``max_silence`` seconds ago. A loop hung for longer stops beating, so a
    hung orchestrator still loses its dispatches to a live one."""

    def __init__(
        self,
        repo_root: Path,
        owner: str,
        interval: float,
        progress: Callable[[], float] = time.monotonic,
        max_silence: float = float("inf"),
    ) -> None:
        self.repo_root, self.owner, self.interval = repo_root, owner, interval
        self.progress, self.max_silence = progress, max_silence
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chump-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if time.monotonic() - self.progress() > self.max_silence:
                continue  # the loop is stuck: let the lease lapse
            try:
                with Store.for_repo(self.repo_root) as store:  # its own connection and thread
                    store.heartbeat(self.owner)
            except (StorageError, sqlite3.Error, OSError):
                continue  # a locked or full database now and then: the next beat tries again
