"""A plain (non-editable) install ships a working ``chump`` and the synthetic backlog."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_chump.core import schemas
from tests.conftest import ROOT, SYNTHETIC


@pytest.fixture(scope="module")
def wheel(built_wheel: Path) -> Path:
    return built_wheel


def test_wheel_holds_exactly_the_package_sources(wheel: Path) -> None:
    """No module of an earlier layout (a stale ``build/``) rides along."""
    package = ROOT / "pytest_chump"
    found = (p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    sources = {p.relative_to(ROOT).as_posix() for p in found}
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n for n in zf.namelist() if n.endswith(".py")}
    assert shipped == sources


def test_wheel_ships_fixture_typing_marker_and_entry_points(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "pytest_chump/selftest/synthetic-backlog.yaml" in names
        for name in schemas.names():  # scripts validate what they read with them
            assert f"pytest_chump/core/schemas/{name}.schema.json" in names
        assert "pytest_chump/py.typed" in names
        for part in ("dashboard.html", "dashboard.css", "dashboard.js"):  # chump serve / report
            assert f"pytest_chump/observe/static/{part}" in names
        shipped = zf.read("pytest_chump/selftest/synthetic-backlog.yaml")
        (ep,) = (n for n in names if n.endswith("entry_points.txt"))
        entry_points = zf.read(ep).decode()
    assert shipped == SYNTHETIC.read_bytes()
    assert "[console_scripts]\nchump = pytest_chump.cli:main" in entry_points
    assert "[pytest11]\nchump = pytest_chump.pytest_plugin" in entry_points


def test_top_level_fixture_is_the_packaged_one() -> None:
    assert (ROOT / "fixtures/synthetic-backlog.yaml").read_bytes() == SYNTHETIC.read_bytes()


def install_to(target: Path, wheel: Path) -> None:
    """A plain (non-editable) install of ``wheel`` into ``target`` (used via PYTHONPATH)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )


def test_installed_console_script_works_outside_any_repo(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    install_to(target, wheel)
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import pytest_chump, importlib.resources as r; print(pytest_chump.__file__); "
        "print(r.files('pytest_chump.selftest').joinpath('synthetic-backlog.yaml'))"
    )
    where = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(p.startswith(str(target)) for p in where), where
    script = target / "bin" / "chump"
    proc = subprocess.run(
        [sys.executable, str(script), "dispatch", "--backlog", where[1]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("WOULD DISPATCH:") == 2


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed (not editable) into its own ``--target`` directory."""
    target = tmp_path_factory.mktemp("installed") / "site"
    install_to(target, wheel)
    return target


def bare_dir(where: Path) -> None:
    pass


def git_repo(where: Path) -> None:
    subprocess.run(["git", "init", "--quiet", str(where)], check=True, capture_output=True)


def unrelated_pytest_config(where: Path) -> None:
    (where / "pyproject.toml").write_text(
        '[project]\nname = "someone-else"\n\n'
        '[tool.pytest.ini_options]\naddopts = "-x --strict-markers"\n'
        'testpaths = ["does-not-exist"]\nmarkers = ["slow: slow tests"]\n'
    )
    (where / "test_theirs.py").write_text("def test_theirs():\n    assert False\n")


@pytest.mark.parametrize("make_dir", [bare_dir, git_repo, unrelated_pytest_config])
def test_installed_self_test_works_in_any_directory(
    installed: Path, tmp_path: Path, make_dir: Callable[[Path], None]
) -> None:
    where = tmp_path / "project"
    where.mkdir()
    make_dir(where)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHUMP_")}
    env["PYTHONPATH"] = str(installed)
    imported = subprocess.run(
        [sys.executable, "-c", "import pytest_chump; print(pytest_chump.__file__)"],
        env=env,
        cwd=where,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert imported == str(installed / "pytest_chump" / "__init__.py")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--chump-self-test"],
        env=env,
        cwd=where,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.match(
        r"self-test PASSED: rows=4 reflections=4 dummy_files=4 elapsed=\d+ms$",
        proc.stdout.splitlines()[0],
    ), proc.stdout
    assert not (where / ".chump").exists()
