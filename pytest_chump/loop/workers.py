"""A small pool for the slow part of starting and ending dispatches, off the loop thread.

Creating a worktree in a large repository takes seconds (``git worktree add`` writes every
file), and so does removing one. Done on the loop thread, that would hold every other agent's
outcome until it finished; here it runs on ``dispatch_workers`` threads while the loop keeps
watching. Git's own writes stay serialised by the repository lock where git needs it.

Each worker thread has its own connection to the store (SQLite connections belong to their
thread). Results come back to the loop thread as each piece of work completes, never held
behind an earlier piece still running: a start is taken in (its agent watched, announced,
its outcome decided) as soon as it is done, and a worktree's lease goes as soon as it is
removed. Taking them back in the order they began would buy nothing the loop needs:

- the picker's order decides which gaps start, and a refill submits them in that order;
  the order results come back in only orders the announcements (dispatched lines, events,
  ``chump_dispatched``) of starts that ran at the same time — as git finishes them;
- the store's order does not depend on it: each worker records its dispatch (and claims
  its lease and slot) when it gets there, whichever way results come back;
- a simulation is deterministic without it: its store is in memory, so it has no workers
  and every start runs on the loop thread, in the picker's order, at one virtual instant.

Pieces found done together come back in the order they were submitted.
"""

from __future__ import annotations

import threading
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
class Pending(Generic[K, T]):
    """Submitted work, handed back as each piece completes (see the module docstring)."""

    pending: list[tuple[K, Future[T]]] = field(default_factory=list)

    def add(self, key: K, future: Future[T]) -> None:
        self.pending.append((key, future))

    def done(self) -> list[tuple[K, Future[T]]]:
        """The pieces completed so far, in submission order; the others stay pending."""
        finished: list[tuple[K, Future[T]]] = []
        running: list[tuple[K, Future[T]]] = []
        for item in self.pending:  # one look at each: a piece completing meanwhile waits
            (finished if item[1].done() else running).append(item)
        self.pending = running
        return finished

    def wait(self) -> None:
        """Block until everything submitted so far is done."""
        wait_all([future for _, future in self.pending])

    def keys(self) -> list[K]:
        return [key for key, _ in self.pending]

    def __len__(self) -> int:
        return len(self.pending)
