"""Runs ``chump`` as a real process for tests, reading its output lines with a timeout."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path


class ChumpProcess:
    """``python -m pytest_chump.cli <args>`` with stdout+stderr merged into a line queue."""

    def __init__(self, cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_chump.cli", *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 30.0) -> list[str]:
        """Block until ``count`` lines starting with ``prefix`` were printed; return them."""
        seen = [ln for ln in self.lines if ln.startswith(prefix)]
        while len(seen) < count:
            line = self._queue.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"chump exited before {count}x {prefix!r}:\n" + self.text)
            self.lines.append(line)
            if line.startswith(prefix):
                seen.append(line)
        return seen

    def finish(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout=timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        return code

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
