"""The in-process self-test: picker, dispatcher, monitor loop, finisher and sinks — the real
ones — over the synthetic backlog, with the ``fake`` spawner, ``instant`` provider and a
``memory`` sink, an in-memory SQLite store and no checkouts (the fake agent needs none)."""

from __future__ import annotations

import io
import shutil
import tempfile
import time
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import pluggy

from pytest_chump.core import config, config_sources
from pytest_chump.core.plugins import get_plugin_manager
from pytest_chump.dispatch.workspaces import NoWorkspaces
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.reflect.memory_sink import MemorySink
from pytest_chump.selftest.report import Report
from pytest_chump.state.store import Store


def synthetic_backlog() -> Path:
    """The synthetic backlog shipped inside the package."""
    return Path(str(resources.files("pytest_chump.selftest") / "synthetic-backlog.yaml"))


def settings_for(root: Path, backlog: Path, max_parallel: int) -> config.Settings:
    flags: dict[str, object] = {
        "backlog": str(backlog.resolve()),
        "max_parallel": max_parallel,
        "spawner": "fake",
        "pr_provider": "instant",
        "sinks": "memory",
        "base_ref": "HEAD",
        "poll_interval": 0,
        "lessons": False,
        "strict": True,  # a self-test on a backlog with problems refuses it, never skips gaps
    }
    table = {"spawners": {"fake": {"scratch": str(root / "synth-test")}}}
    return config_sources.resolve(root, flags, env={}, table=table)


def run(
    backlog: Path | None = None,
    max_parallel: int = 2,
    pm: pluggy.PluginManager | None = None,
    plugins: Iterable[object] = (),
) -> Report:
    """Drive the real loop over ``backlog`` (default: the shipped synthetic one)."""
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="chump-self-test-"))
    try:
        settings = settings_for(root, backlog or synthetic_backlog(), max_parallel)
        app = App(settings, pm or get_plugin_manager(extra=plugins, env={}))
        app.pm.hook.chump_configure(settings=settings)
        with Store(Path(":memory:")) as store:
            orch = Orchestrator(
                app,
                store,
                app.spawner_factory(),
                app.provider(),
                Progress(io.StringIO()),
                workspaces=NoWorkspaces(),
            )
            orch.monitor.base_done = frozenset  # no repository: no base branch to read
            orch.run()
        sink = app.sinks()["memory"]
        assert isinstance(sink, MemorySink)
        scratch = root / "synth-test"
        files = sorted(p.name for p in scratch.iterdir()) if scratch.exists() else []
        expected = [g.id for g in app.pick(orch.backlog, 10**6)] if orch.backlog else []
        report = Report(orch.finisher.rows, list(sink.reflections), files, 0.0, expected)
        report.elapsed_s = time.perf_counter() - started
        return report
    finally:
        shutil.rmtree(root, ignore_errors=True)
