"""An orchestrator's heartbeat, from a thread of its own: a loop busy in a long worktree
set-up, a slow ``git worktree add`` or a merge must not look dead (silent past
``lease_ttl``) and lose its dispatches to another orchestrator while it is alive."""

from __future__ import annotations

import threading
from pathlib import Path

from pytest_chump.state.database import StorageError
from pytest_chump.state.store import Store


class Heartbeat:
    """Beats for ``owner`` every ``interval`` seconds until stopped (a context manager)."""

    def __init__(self, repo_root: Path, owner: str, interval: float) -> None:
        self.repo_root, self.owner, self.interval = repo_root, owner, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chump-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            with Store.for_repo(self.repo_root) as store:  # its own connection: its own thread
                while not self._stop.wait(self.interval):
                    store.heartbeat(self.owner)
        except StorageError:
            return  # the loop's own writes report the storage problem, once
