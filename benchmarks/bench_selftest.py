"""The self-test and the plugin's cost to every pytest run.

- ``pytest --chump-self-test`` as a whole process (target <= 1.0 s);
- the in-process self-test (target <= 10 ms median, the Rust reference's figure);
- pytest start-up overhead of having the plugin installed: ``pytest --co -q`` on a small
  test directory with and without ``-p no:chump`` (target ratio <= 1.10).
Run: ``.venv/bin/python -m benchmarks.bench_selftest [--runs N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import record
from pytest_chump.core.plugins import get_plugin_manager
from pytest_chump.selftest import inprocess


def wall(argv: list[str], cwd: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
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


def small_test_dir(root: Path) -> Path:
    for n in range(20):
        (root / f"test_m{n}.py").write_text(
            "".join(f"def test_{k}():\n    assert {k} == {k}\n" for k in range(10))
        )
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    pytest = [sys.executable, "-m", "pytest"]
    with tempfile.TemporaryDirectory() as tmp:
        root = small_test_dir(Path(tmp))
        self_test = wall([*pytest, "--chump-self-test"], root, args.runs)
        with_plugin, without = [], []
        for _ in range(args.runs):  # interleaved, so drift of the machine hits both alike
            with_plugin += wall([*pytest, "--co", "-q"], root, 1)
            without += wall([*pytest, "--co", "-q", "-p", "no:chump"], root, 1)
    inproc = in_process(args.runs * 4)
    ratio = statistics.median(with_plugin) / statistics.median(without)
    body = (
        f"Median of {args.runs} runs (in-process: {args.runs * 4}).\n\n"
        "| measure | median | target |\n|---|---|---|\n"
        f"| `pytest --chump-self-test`, whole process | **{statistics.median(self_test):.3f} s** "
        "| <= 1.0 s |\n"
        f"| self-test in process | **{statistics.median(inproc) * 1000:.1f} ms** | <= 10 ms |\n"
        f"| `pytest --co -q` (200 tests) with the plugin | {statistics.median(with_plugin):.3f} s "
        "| |\n"
        f"| same with `-p no:chump` | {statistics.median(without):.3f} s | |\n"
        f"| start-up ratio with / without | **{ratio:.3f}** | <= 1.10 |"
    )
    if not args.no_write:
        record("selftest", "Self-test and pytest start-up overhead", body)
    print(body)


if __name__ == "__main__":
    main()
