"""Which thread calls a plugin, as ``hookspecs.py`` documents it: the prompt builder and the
spawner run on dispatch workers — two starts at once, so two calls at once — and every
other hook on the loop thread."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pytest_chump import hookimpl
from pytest_chump.core.config import Settings
from pytest_chump.core.model import Gap
from pytest_chump.core.protocols import Dispatch, Spawner, SpawnHandle, SpawnRequest
from pytest_chump.core.records import Arm, ArmStats, Outcome, PickRequest, Reflection
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.state.store import Store
from tests.gitrepos import repo  # noqa: F401  (fixture)

TWO = "gaps:\n  - {id: T-1, priority: P1, effort: s}\n  - {id: T-2, priority: P1, effort: s}\n"


class Threads:
    """A plugin noting the thread of each call; its prompt builder returns only once both
    gaps' prompts are being built at the same time (or fails the dispatch after 30 s)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.together = threading.Barrier(2, timeout=30)

    def saw(self, what: str) -> None:
        with self._lock:
            self.calls.append((what, threading.current_thread().name))

    @hookimpl
    def chump_pick(self, gaps: Sequence[Gap], request: PickRequest) -> None:
        self.saw("chump_pick")

    @hookimpl
    def chump_route(
        self, gap: Gap, candidates: Sequence[Arm], stats: Mapping[Arm, ArmStats]
    ) -> None:
        self.saw("chump_route")

    @hookimpl
    def chump_build_prompt(self, gap: Gap, dispatch: Dispatch, settings: Settings) -> None:
        self.saw("chump_build_prompt")
        self.together.wait()

    @hookimpl
    def chump_dispatched(self, dispatch: Dispatch) -> None:
        self.saw("chump_dispatched")

    @hookimpl
    def chump_outcome(self, dispatch: Dispatch, outcome: Outcome) -> None:
        self.saw("chump_outcome")

    @hookimpl
    def chump_reflect(self, reflection: Reflection) -> None:
        self.saw("chump_reflect")


class Noted:
    """A spawner whose ``spawn`` notes its thread."""

    def __init__(self, inner: Spawner, threads: Threads) -> None:
        self.inner, self.threads, self.name = inner, threads, inner.name

    def spawn(self, request: SpawnRequest) -> SpawnHandle:
        self.threads.saw("spawn")
        return self.inner.spawn(request)


def test_prompts_and_spawns_run_on_workers_the_other_hooks_on_the_loop(repo: Path) -> None:
    (repo / "docs/gaps.yaml").write_text(TWO)
    threads = Threads()
    app = App.create({"repo_root": str(repo)}, plugins=[threads])
    assert app.settings.dispatch_workers == 2
    made = app.spawner_factory()
    spawner: Callable[[str], Spawner] = lambda name: Noted(made(name), threads)  # noqa: E731
    out = io.StringIO()
    with Store.for_repo(repo) as store:
        Orchestrator(app, store, spawner, app.provider(), Progress(out, out)).run()
        assert {r.outcome for r in store.dispatches()} == {"shipped"}, out.getvalue()
    loop = threading.current_thread().name
    where: dict[str, set[str]] = {}
    for what, thread in threads.calls:
        where.setdefault(what, set()).add("loop" if thread == loop else thread.rsplit("_", 1)[0])
    assert where == {
        "chump_pick": {"loop"},
        "chump_route": {"loop"},
        "chump_build_prompt": {"chump-worker"},  # both at once (the barrier let them through)
        "spawn": {"chump-worker"},
        "chump_dispatched": {"loop"},
        "chump_outcome": {"loop"},
        "chump_reflect": {"loop"},
    }
    assert [w for w, _ in threads.calls].count("chump_build_prompt") == 2
