"""A plain (non-editable) install ships a working ``chump`` and the synthetic backlog."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT, SYNTHETIC


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("pytest_chump-*.whl")
    return path


def test_wheel_ships_fixture_typing_marker_and_entry_points(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "pytest_chump/fixtures/synthetic-backlog.yaml" in names
        assert "pytest_chump/py.typed" in names
        shipped = zf.read("pytest_chump/fixtures/synthetic-backlog.yaml")
        (ep,) = (n for n in names if n.endswith("entry_points.txt"))
        entry_points = zf.read(ep).decode()
    assert shipped == SYNTHETIC.read_bytes()
    assert "[console_scripts]\nchump = pytest_chump.cli:main" in entry_points
    assert "[pytest11]\nchump = pytest_chump.pytest_plugin" in entry_points


def test_top_level_fixture_is_the_packaged_one() -> None:
    assert (ROOT / "fixtures/synthetic-backlog.yaml").read_bytes() == SYNTHETIC.read_bytes()


def test_installed_console_script_works_outside_any_repo(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
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
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import pytest_chump, importlib.resources as r; print(pytest_chump.__file__); "
        "print(r.files('pytest_chump.fixtures').joinpath('synthetic-backlog.yaml'))"
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
