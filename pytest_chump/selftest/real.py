"""The real self-test: a temporary repository with a bare origin, real git worktrees, one
real agent process per gap (``selftest/agent.py``) and the offline ``git`` PR provider."""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from pytest_chump.core import config, config_sources
from pytest_chump.core.plugins import get_plugin_manager
from pytest_chump.core.run import run as run_cmd
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.selftest.inprocess import synthetic_backlog
from pytest_chump.selftest.report import Report
from pytest_chump.state.store import Store

IDENTITY = ("-c", "user.name=chump self-test", "-c", "user.email=self-test@chump.invalid")


def _git(cwd: Path, *args: str) -> None:
    run_cmd(["git", *IDENTITY, *args], cwd=cwd)


def make_repo(root: Path, backlog: Path) -> Path:
    """``root/origin.git`` (bare) and ``root/work`` (its clone) with the backlog committed."""
    origin, work = root / "origin.git", root / "work"
    _git(root, "init", "--quiet", "--bare", "-b", "main", str(origin))
    _git(root, "clone", "--quiet", str(origin), str(work))
    _git(work, "symbolic-ref", "HEAD", "refs/heads/main")
    (work / "docs").mkdir()
    shutil.copyfile(backlog, work / "docs" / "gaps.yaml")
    _git(work, "add", "docs/gaps.yaml")
    _git(work, "commit", "--quiet", "-m", "synthetic backlog")
    _git(work, "push", "--quiet", "origin", "main")
    _git(work, "fetch", "--quiet", "origin")
    return work


def settings_for(work: Path, max_parallel: int) -> config.Settings:
    agent = [sys.executable, "-m", "pytest_chump.selftest.agent"]
    flags: dict[str, object] = {
        "max_parallel": max_parallel,
        "spawner": "selftest-agent",
        "pr_provider": "git",
        "sinks": "memory",
        "poll_interval": "100ms",
        "exit_grace": "10s",
        "lessons": False,
        "strict": True,  # a self-test on a backlog with problems refuses it, never skips gaps
    }
    table = {"spawners": {"selftest-agent": {"command": agent}}}
    return config_sources.resolve(work, flags, env={}, table=table)


def run(
    backlog: Path | None = None, max_parallel: int = 2, plugins: Iterable[object] = ()
) -> Report:
    """Drive the real loop with real git and real processes; everything lives in a temp dir."""
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="chump-self-test-real-"))
    scratch = root / "synth-test"
    previous = os.environ.get("CHUMP_SELFTEST_SCRATCH")
    os.environ["CHUMP_SELFTEST_SCRATCH"] = str(scratch)  # agents inherit it
    try:
        work = make_repo(root, backlog or synthetic_backlog())
        settings = settings_for(work, max_parallel)
        app = App(settings, get_plugin_manager(extra=plugins, env={}))
        app.pm.hook.chump_configure(settings=settings)
        with Store.for_repo(work) as store:
            orch = Orchestrator(
                app, store, app.spawner_factory(), app.provider(), Progress(io.StringIO())
            )
            orch.run()
        files = sorted(p.name for p in scratch.iterdir()) if scratch.exists() else []
        expected = [g.id for g in app.pick(orch.backlog, 10**6)] if orch.backlog else []
        sink = app.sinks()["memory"]
        reflections = list(getattr(sink, "reflections", []))
        return Report(
            orch.finisher.rows, reflections, files, time.perf_counter() - started, expected
        )
    finally:
        if previous is None:
            os.environ.pop("CHUMP_SELFTEST_SCRATCH", None)
        else:
            os.environ["CHUMP_SELFTEST_SCRATCH"] = previous
        shutil.rmtree(root, ignore_errors=True)
