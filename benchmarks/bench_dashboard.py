"""Dashboard first render in headless chromium, target <= 1 s.

A store built directly (``Store``) holds 64 dispatches in flight (each with a log whose last
line the state shows) and 10,000 ended ones over the last 14 days (with their routing
outcomes); ``chump serve --port 0`` serves it. Each load is timed from navigation start to
``body[data-ready="1"]`` (the page's ``performance.now()`` when its first render finished:
the page, its ``/api/v1/state`` fetch and the drawing), median of N loads in one browser.
The report of the same 10,000 dispatches (``chump report``, opened via ``file://``) is timed
the same way.

Needs chromium and chromedriver (Debian: ``apt-get install chromium chromium-driver``) and
selenium. Run: ``.venv/bin/python -m benchmarks.bench_dashboard [--loads N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.report import record
from pytest_chump.core.model import OUTCOMES
from pytest_chump.loop.app import App
from pytest_chump.observe.report import write_report
from pytest_chump.state.liveness import make_owner
from pytest_chump.state.store import Store

TARGET_S = 1.0
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BACKENDS = (("claude", "opus"), ("codex", "gpt-5"), ("aider", ""))
DAY = 86400.0
DAYS = 14


def fill(root: Path, in_flight: int, ended: int, seed: int = 1) -> None:
    """``root/.chump/chump.db`` with ``in_flight`` running dispatches (owned by this process,
    so they show as watched) and ``ended`` ended ones over the last ``DAYS`` days on 8 slots
    (so the dashboard's last 24 hours hold more than the 500 bars it shows)."""
    rng = random.Random(seed)
    now = time.time()
    idle = max(0.0, DAYS * DAY * 8 / max(ended, 1) - 930.0)  # 930 s: the mean run below
    owner = make_owner()
    logs = root / ".chump" / "logs"
    with Store.for_repo(root) as store:
        store.register_owner(owner)
        rows, routing = [], []
        slot_free = [now - DAYS * DAY] * 8
        for n in range(ended):
            slot = min(range(8), key=slot_free.__getitem__)
            start = slot_free[slot] + rng.uniform(0, 2 * idle)
            end = start + rng.uniform(60, 30 * 60)
            slot_free[slot] = end
            backend, model = BACKENDS[n % len(BACKENDS)]
            outcome = rng.choices(OUTCOMES, weights=(60, 15, 10, 10, 5))[0]
            cost = round(rng.uniform(0.05, 3.0), 4)
            gap = f"HIST-{n:05d}"
            rows.append(
                (gap, f"chump/{gap}", f"/wt/{gap}", backend, model, owner, start, end, "ended",
                 outcome, "" if outcome == "shipped" else "tests", f"{outcome} after work",
                 cost, rng.randrange(1000, 90000), rng.randrange(100, 9000), 1 + n % 3)
            )  # fmt: skip
            routing.append(
                (n + 1, "core", "P1", "s", backend, model, outcome, end - start, cost, end)
            )
        with store.transaction() as conn:
            conn.executemany(
                "INSERT INTO dispatches(gap_id, branch, worktree, backend, model, owner, "
                "started_at, ended_at, state, outcome, cause, reason, cost_usd, tokens_in, "
                "tokens_out, attempt) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            conn.executemany(
                "INSERT INTO routing_outcomes(dispatch_id, task_class, priority, effort, backend, "
                "model, outcome, duration_s, cost_usd, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                routing,
            )
        logs.mkdir(parents=True, exist_ok=True)
        states = ("running", "running", "running", "silent", "stalled", "awaiting-pr")
        for n in range(in_flight):
            gap = f"LIVE-{n:03d}"
            backend, model = BACKENDS[n % len(BACKENDS)]
            log = logs / f"{gap}.log"
            log.write_text(
                "".join(f"step {i} of {gap}: editing src/module_{i}.py\n" for i in range(40))
            )
            dispatch_id = store.add_dispatch(
                gap, f"chump/{gap}", f"/wt/{gap}", backend, owner, model=model or None,
                effort="m", priority="P1", log_path=str(log), attempt=1 + n % 2,
            )  # fmt: skip
            store.update_dispatch(
                dispatch_id,
                state=states[n % len(states)],
                started_at=now - rng.uniform(30, 3000),
                cost_usd=round(rng.uniform(0, 2), 3),
            )


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1000")
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


@contextmanager
def serving(root: Path) -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_chump.cli",
            "serve",
            "--port",
            "0",
            "--repo-root",
            str(root),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("chump: serving "), line
        yield line.removeprefix("chump: serving ")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def first_render_s(driver: Any, url: str, loads: int) -> list[float]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    times = []
    for _ in range(loads + 1):  # the first load warms the browser up and is not counted
        driver.get(url)
        WebDriverWait(driver, 60).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, 'body[data-ready="1"]'))
        )
        times.append(float(driver.execute_script("return document.body.dataset.readyMs")) / 1000)
    return times[1:]


def state_fetch(url: str, n: int = 9) -> tuple[float, int]:
    """Median seconds of ``GET /api/v1/state`` and its size in bytes."""
    times, size = [], 0
    for _ in range(n):
        start = time.perf_counter()
        with urllib.request.urlopen(url + "api/v1/state", timeout=30) as res:  # loopback only
            size = len(res.read())
        times.append(time.perf_counter() - start)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loads", type=int, default=15)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        sys.exit("needs chromium and chromedriver: apt-get install chromium chromium-driver")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        fill(root, args.in_flight, args.history)
        settings = App.create({"repo_root": str(root)}).settings
        report = root / "report.html"
        write_report(report, root, settings, 0.0)
        report_mb = report.stat().st_size / 1e6
        driver = browser()
        version = str(driver.capabilities.get("browserVersion"))
        try:
            with serving(root) as url:
                fetch_s, size = state_fetch(url)
                live = first_render_s(driver, url, args.loads)
                cards = driver.execute_script("return document.querySelectorAll('.card').length")
                bars = driver.execute_script(
                    "return document.querySelectorAll('#timeline rect.bar').length"
                )
            offline = first_render_s(driver, report.as_uri(), args.loads)
            report_bars = driver.execute_script(
                "return document.querySelectorAll('#timeline rect.bar').length"
            )
        finally:
            driver.quit()
    live_median, report_median = statistics.median(live), statistics.median(offline)
    body = (
        f"A store with {args.in_flight} dispatches in flight and {args.history:,} ended over "
        f"{DAYS} days (8 slots, 3 backends); `chump serve` on loopback; headless Chromium "
        f'{version}. Time from navigation start to `body[data-ready="1"]` '
        f"(page + `/api/v1/state` + first drawing), median of {args.loads} loads after one "
        f"warm-up. Target: dashboard <= {TARGET_S:.0f} s.\n\n"
        "| page | median | p90 | max | drawn |\n|---|---|---|---|---|\n"
        f"| dashboard (live) | **{live_median:.3f} s** | {_p90(live):.3f} s | {max(live):.3f} s | "
        f"{cards} cards, {bars} timeline bars (last 24 h, at most 500) |\n"
        f"| report, all {args.history + args.in_flight:,} dispatches (`file://`, "
        f"{report_mb:.1f} MB) | **{report_median:.3f} s** | "
        f"{_p90(offline):.3f} s | {max(offline):.3f} s | {report_bars} timeline bars |\n\n"
        f"`GET /api/v1/state` alone: {fetch_s * 1000:.0f} ms median, {size / 1000:.0f} kB.\n"
    )
    print(body)
    if not args.no_write:
        record("dashboard", "Dashboard first render", body)


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
