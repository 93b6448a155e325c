"""A small pool for the slow part of starting and ending dispatches, off the loop thread.

Creating a worktree in a large repository takes seconds (``git worktree add`` writes every
file), and so does removing one. Done on the loop thread, that would hold every other agent's
outcome until it finished; here it runs on ``dispatch_workers`` threads while the loop keeps
watching. Git's own writes stay serialised by the repository lock where git needs it.

Each worker thread has its own connection to the store (SQLite connections belong to their
thread); results come back to the loop thread in the order the work was submitted, so what
the loop announces (dispatched lines and events) keeps the order the picker chose.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from pytest_chump.state.store import Store

T = TypeVar("T")
K = TypeVar("K")


class Workers:
    """``size`` threads; each task gets its thread's own store (``None`` when there is none)."""

    def __init__(
        self,
        size: int,
        wake: Callable[[], None],
        db: Path | None,
        configure: Callable[[Store], None] | None = None,
    ) -> None:
        self.wake, self.db, self.configure = wake, db, configure
        self.closing = False  # the run is over: a start not yet under way must not begin
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="chump-worker")
        self._local = threading.local()
        self._stores: list[Store] = []
        self._lock = threading.Lock()

    def _store(self) -> Store | None:
        if self.db is None:
            return None
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = Store(self.db, shared=True)
            if self.configure is not None:
                self.configure(store)
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return store

    def submit(self, task: Callable[[Store | None], T]) -> Future[T]:
        """Run ``task(store)`` on a worker; the loop is woken when it is done."""
        future = self._pool.submit(lambda: task(self._store()))
        future.add_done_callback(lambda _: self.wake())
        return future

    def close(self) -> None:
        """Drop what has not begun, wait for what runs, then close the workers' connections."""
        self.closing = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for store in self._stores:
                store.close()
            self._stores.clear()


@dataclass
class InOrder(Generic[K, T]):
    """Submitted work, handed back in submission order as it completes."""

    pending: deque[tuple[K, Future[T]]] = field(default_factory=deque)

    def add(self, key: K, future: Future[T]) -> None:
        self.pending.append((key, future))

    def done(self) -> list[tuple[K, Future[T]]]:
        """The completed head of the queue (a later piece of work waits for earlier ones)."""
        out = []
        while self.pending and self.pending[0][1].done():
            out.append(self.pending.popleft())
        return out

    def wait(self) -> None:
        """Block until everything submitted so far is done."""
        wait_all([future for _, future in self.pending])

    def keys(self) -> list[K]:
        return [key for key, _ in self.pending]

    def __len__(self) -> int:
        return len(self.pending)
