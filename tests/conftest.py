"""Shared fixtures for chump's own tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "pytest_chump" / "selftest" / "synthetic-backlog.yaml"
# most slow tests wait on subprocesses: one worker more than cores keeps them busy (3 on CI's 2)
WORKERS = len(os.sched_getaffinity(0)) + 1
DIST = "worksteal"  # an idle worker takes queued tests from a busy one: no slow tail


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Spread the suite over ``WORKERS`` pytest-xdist workers unless the command line says
    otherwise: ``-n N`` (``-n 0``: one process), ``--dist``, ``--pdb`` or ``-p no:xdist``.
    (Not ``addopts``: ``-n`` there would be an unknown option under ``-p no:xdist``.)"""
    if hasattr(config, "workerinput"):
        return  # one of xdist's workers: the controller settled all this
    _share_bytecode(config)
    if not config.pluginmanager.has_plugin("xdist"):
        return
    option = config.option
    if option.numprocesses is None and option.dist == "no" and not option.usepdb:
        option.numprocesses, option.dist = WORKERS, DIST


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run's shared Ray cluster (tests/ray_shared.py) ends with the run, in the
    controller (or the only process), after every worker finished."""
    if hasattr(session.config, "workerinput"):
        return
    from tests.ray_shared import run_root, stop_shared

    stop_shared(run_root(session.config))


def _share_bytecode(config: pytest.Config) -> None:
    """Under ``PYTHONDONTWRITEBYTECODE`` each of the hundreds of Python processes the tests
    start (chump runs, agents, hooks, xdist's workers) would compile pytest_chump from source
    again: for the run they share one bytecode cache instead, in a temporary directory
    (``PYTHONPYCACHEPREFIX``), so still nothing is written beside the sources."""
    import shutil
    import tempfile

    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    cache = tempfile.mkdtemp(prefix="chump-tests-bytecode-")
    saved = os.environ.pop("PYTHONDONTWRITEBYTECODE")
    os.environ["PYTHONPYCACHEPREFIX"] = cache

    def restore() -> None:
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
        os.environ["PYTHONDONTWRITEBYTECODE"] = saved
        shutil.rmtree(cache, ignore_errors=True)

    config.add_cleanup(restore)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CHUMP_* or git hook variable leaks in; git ignores the user's config; fixed identity."""
    import os

    for name in list(os.environ):
        if name.startswith("CHUMP_") or name in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test User")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.invalid")


@pytest.fixture
def write_backlog(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write YAML text to ``<tmp>/docs/gaps.yaml`` (or another relative path); return the path."""

    def write(text: str, name: str = "docs/gaps.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this project built from a copy of its tracked (and new, not ignored) files,
    so stale build output in the checkout (``build/``) can never leak into it."""
    import shutil
    import subprocess
    import sys

    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    source = tmp_path_factory.mktemp("source")
    for name in filter(None, files):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_symlink():
            target.symlink_to(os.readlink(ROOT / name))
        elif (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    out = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*build, "--wheel-dir", str(out), str(source)], check=True, capture_output=True)
    (path,) = out.glob("pytest_chump-*.whl")
    return path
