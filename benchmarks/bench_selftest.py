"""The self-test and the plugin's cost to every pytest run.

- ``pytest --chump-self-test`` as a whole process (target <= 1.0 s);
- the in-process self-test (target <= 10 ms median, the Rust reference's figure);
- pytest start-up overhead of having the plugin installed: ``pytest --co -q`` on 30 trivial
  tests with and without ``-p no:chump``, interleaved (the order alternating) so that the
  machine's drift hits both alike; target ratio of the medians <= 1.03. Measured with bytecode
  caching on, as an installed package runs; and again with ``PYTHONDONTWRITEBYTECODE=1`` and the
  package's ``__pycache__`` removed, where every chump module imported is compiled each run (as
  pytest does for an installed plugin's modules when it may not cache its rewritten bytecode);
- the same start-up ratio counted in instructions (``valgrind --tool=callgrind``, when
  installed): deterministic, where the times on a shared machine are not;
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
import tempfile
import time
from pathlib import Path

import pytest_chump
from benchmarks.report import record
from pytest_chump.core.plugins import get_plugin_manager
from pytest_chump.selftest import inprocess

PACKAGE = Path(pytest_chump.__file__).parent
CACHED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
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


def start_up(root: Path, runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median wall time of ``pytest --co -q`` with and without the plugin, interleaved."""
    argv = [sys.executable, "-m", "pytest", "--co", "-q"]
    times: dict[bool, list[float]] = {True: [], False: []}  # with the plugin?
    for i in range(runs):
        for with_plugin in (True, False) if i % 2 == 0 else (False, True):
            extra = [] if with_plugin else ["-p", "no:chump"]
            times[with_plugin] += wall([*argv, *extra], root, 1, env)
    return statistics.median(times[True]), statistics.median(times[False])


def instructions(root: Path, env: dict[str, str]) -> float | None:
    """Ratio of the instructions ``pytest --co -q`` executes with / without the plugin."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    callgrind = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    counts = []
    for extra in ([], ["-p", "no:chump"]):
        proc = subprocess.run(
            [*callgrind, sys.executable, "-m", "pytest", "--co", "-q", *extra],
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


def remove_bytecode() -> None:
    for cache in PACKAGE.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def plugin_import_us(runs: int) -> float:
    """Median cumulative ``-X importtime`` of the entry point, imported after pytest."""
    code = "import pytest; import pytest_chump.pytest_plugin"
    found = []
    for i in range(runs + 1):  # the first writes the bytecode, and is not counted
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=CACHED,
        )
        rows = [line.split("|") for line in proc.stderr.splitlines() if "|" in line]
        if i:
            found += [int(r[1]) for r in rows if r[2].strip() == "pytest_chump.pytest_plugin"]
    return statistics.median(found)


def chump_modules_of_a_run(root: Path) -> list[str]:
    code = (
        "import sys, pytest\n"
        "pytest.main(['--co', '-q', '-p', 'no:cacheprovider'])\n"
        "print('MODULES', *sorted(m for m in sys.modules if m.startswith('pytest_chump')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    return next(ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES ")).split()[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--startup-runs", type=int, default=30)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    pytest = [sys.executable, "-m", "pytest"]
    with tempfile.TemporaryDirectory() as tmp:
        root = trivial_tests(Path(tmp))
        self_test = wall([*pytest, "--chump-self-test"], root, args.runs)
        wall([*pytest, "--co", "-q"], root, 2, CACHED)  # warm up: bytecode written
        cached = start_up(root, args.startup_runs, CACHED)
        counted = instructions(root, CACHED)
        remove_bytecode()
        uncached = start_up(root, args.startup_runs, UNCACHED)
        counted_uncached = instructions(root, UNCACHED)
        modules = chump_modules_of_a_run(root)
    importtime = plugin_import_us(args.runs)
    inproc = in_process(args.runs * 4)
    ratio, ratio_uncached = cached[0] / cached[1], uncached[0] / uncached[1]
    no_valgrind = "(valgrind not installed)"
    body = (
        f"Median of {args.runs} runs (in-process: {args.runs * 4}; start-up: "
        f"{args.startup_runs} interleaved pairs).\n\n"
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
