"""Waiting on a condition in tests, never on time: look every 20 ms, give up after a bound
(a slow machine only makes a test slower, never flaky), and whether a process still runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

STEP = 0.02


def until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Whether ``condition`` became true within ``timeout`` seconds."""
    step = threading.Event()
    for _ in range(int(timeout / STEP)):
        if condition():
            return True
        step.wait(STEP)
    return condition()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"
