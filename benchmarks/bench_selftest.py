"""The self-test and the plugin's cost to every pytest run.

- ``pytest --chump-self-test`` as a whole process (target <= 1.0 s);
- the in-process self-test (target <= 10 ms median, the Rust reference's figure);
- pytest start-up overhead of having the plugin installed: ``pytest --co -q`` on 30 trivial
  tests with and without ``-p no:chump``, interleaved (the order alternating) so that the
  machine's drift hits both alike; target ratio of the medians <= 1.03. Measured in a throwaway
  venv where the package is installed as from a wheel (an editable install hides two costs users
  pay: pytest does not rewrite its modules, and its import finder sits in ``sys.meta_path`` with
  or without the plugin); with bytecode caching on, as an installed package runs, and again with
  ``PYTHONDONTWRITEBYTECODE=1`` and no bytecode cached, where pytest compiles every chump
  module the plugin imports on each run;
- the same ratios counted in instructions executed (``valgrind --tool=callgrind``, when
  installed): deterministic, where times on a shared machine are not;
- the import of the entry point (``-X importtime``, after ``import pytest``, bytecode cached)
  and the chump modules a pytest run that does not use chump imports.

Run: ``.venv/bin/python -m benchmarks.bench_selftest [--runs N] [--startup-runs N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
from pathlib import Path

import pytest_chump
from benchmarks.report import record
from pytest_chump.core.plugins import get_plugin_manager
from pytest_chump.selftest import inprocess

PACKAGE = Path(pytest_chump.__file__).parent
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# the throwaway venv sees only its own site: no PYTHONPATH (``python -m benchmarks`` sets one
# to this checkout, which would import the package from here instead of the installed copy)
CACHED = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
UNCACHED = {**CACHED, "PYTHONDONTWRITEBYTECODE": "1"}


def wall(argv: list[str], cwd: Path, runs: int, env: dict[str, str] | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return times


def in_process(runs: int) -> list[float]:
    pm = get_plugin_manager(env={})  # built once per process, as pytest does
    times = []
    for _ in range(runs):
        report = inprocess.run(pm=pm)
        assert report.passed
        times.append(report.elapsed_s)
    return times


def trivial_tests(root: Path) -> Path:
    (root / "test_trivial.py").write_text(
        "".join(f"def test_{k}():\n    assert {k} == {k}\n" for k in range(30))
    )
    return root


def installed(venv: Path) -> tuple[str, Path]:
    """A venv holding a copy of the package as a wheel installs it (files, entry point,
    ``RECORD``), its dependencies taken from this venv: its python and the package's folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    shutil.copytree(PACKAGE, site / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))
    info = site / f"{PACKAGE.name}-{pytest_chump.__version__}.dist-info"
    info.mkdir()
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {pytest_chump.__version__}\n"
    )
    groups = project["entry-points"]
    (info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
            for group, eps in groups.items()
        )
    )
    files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    python = str(venv / "bin" / "python")
    code = "import pytest_chump; print(pytest_chump.__file__)"
    found = subprocess.run(
        [python, "-c", code], cwd=venv, capture_output=True, text=True, check=True, env=CACHED
    )
    assert Path(found.stdout.strip()).parent == site / PACKAGE.name, found.stdout
    return python, site / PACKAGE.name


def start_up(python: str, root: Path, runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall time of ``pytest --co -q`` with and without the plugin, interleaved."""
    argv = [python, "-m", "pytest", "--co", "-q"]
    times: dict[bool, list[float]] = {True: [], False: []}  # with the plugin?
    for i in range(runs):
        for with_plugin in (True, False) if i % 2 == 0 else (False, True):
            extra = [] if with_plugin else ["-p", "no:chump"]
            times[with_plugin] += wall([*argv, *extra], root, 1, env)
    return statistics.median(times[True]), statistics.median(times[False])


def instructions(python: str, root: Path, env: dict[str, str]) -> float | None:
    """Ratio of the instructions ``pytest --co -q`` executes with / without the plugin."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    callgrind = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    counts = []
    for extra in ([], ["-p", "no:chump"]):
        proc = subprocess.run(
            [*callgrind, python, "-m", "pytest", "--co", "-q", *extra],
            cwd=root,
            env={**env, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=True,
        )
        found = re.search(r"Collected : (\d+)", proc.stderr)
        assert found, proc.stderr
        counts.append(int(found.group(1)))
    return counts[0] / counts[1]


def remove_bytecode(package: Path) -> None:
    for cache in package.rglob("__pycache__"):
        shutil.rmtree(cache)


def plugin_import_us(python: str, root: Path, runs: int) -> float:
    """Median cumulative ``-X importtime`` of the entry point, imported after pytest."""
    code = "import pytest; import pytest_chump.pytest_plugin"
    found = []
    for i in range(runs + 1):  # the first writes the bytecode, and is not counted
        proc = subprocess.run(
            [python, "-X", "importtime", "-c", code],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            env=CACHED,
        )
        rows = [line.split("|") for line in proc.stderr.splitlines() if "|" in line]
        if i:
            found += [int(r[1]) for r in rows if r[2].strip() == "pytest_chump.pytest_plugin"]
    return statistics.median(found)


def chump_modules_of_a_run(python: str, root: Path) -> list[str]:
    code = (
        "import sys, pytest\n"
        "pytest.main(['--co', '-q', '-p', 'no:cacheprovider'])\n"
        "print('MODULES', *sorted(m for m in sys.modules if m.startswith('pytest_chump')))\n"
    )
    proc = subprocess.run(
        [python, "-c", code], cwd=root, capture_output=True, text=True, check=True, env=CACHED
    )
    return next(ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES ")).split()[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--startup-runs", type=int, default=100)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    pytest = [sys.executable, "-m", "pytest"]
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as place:
        root = trivial_tests(Path(tmp))
        self_test = wall([*pytest, "--chump-self-test"], root, args.runs)
        python, package = installed(Path(place) / "venv")
        wall([python, "-m", "pytest", "--co", "-q"], root, 2, CACHED)  # bytecode written
        cached = start_up(python, root, args.startup_runs, CACHED)
        counted = instructions(python, root, CACHED)
        remove_bytecode(package)
        uncached = start_up(python, root, args.startup_runs, UNCACHED)
        counted_uncached = instructions(python, root, UNCACHED)
        modules = chump_modules_of_a_run(python, root)
        importtime = plugin_import_us(python, root, args.runs)
    inproc = in_process(args.runs * 4)
    ratio, ratio_uncached = cached[0] / cached[1], uncached[0] / uncached[1]
    no_valgrind = "(valgrind not installed)"
    body = (
        f"Median of {args.runs} runs (in-process: {args.runs * 4}; start-up: "
        f"{args.startup_runs} interleaved pairs, the package installed as from a wheel).\n\n"
        "| measure | median | target |\n|---|---|---|\n"
        f"| `pytest --chump-self-test`, whole process | **{statistics.median(self_test):.3f} s** "
        "| <= 1.0 s |\n"
        f"| self-test in process | **{statistics.median(inproc) * 1000:.1f} ms** | <= 10 ms |\n"
        f"| `pytest --co -q` (30 tests) with the plugin | {cached[0]:.3f} s | |\n"
        f"| same with `-p no:chump` | {cached[1]:.3f} s | |\n"
        f"| start-up ratio with / without | **{ratio:.3f}** | <= 1.03 |\n"
        f"| same in instructions executed (callgrind) | "
        f"{f'{counted:.4f}' if counted else no_valgrind} | |\n"
        f"| no bytecode cached (`PYTHONDONTWRITEBYTECODE=1`): start-up ratio | "
        f"{ratio_uncached:.3f} | |\n"
        f"| same in instructions executed (callgrind) | "
        f"{f'{counted_uncached:.4f}' if counted_uncached else no_valgrind} | |\n"
        f"| entry point import after pytest (`-X importtime`) | {importtime / 1000:.2f} ms | |\n"
        f"| chump modules a pytest run imports | {len(modules)}: "
        f"{', '.join(f'`{m}`' for m in modules)} | |"
    )
    if not args.no_write:
        record("selftest", "Self-test and pytest start-up overhead", body)
    print(body)


if __name__ == "__main__":
    main()
