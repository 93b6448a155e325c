"""The ``fake`` spawner: no process, it writes ``<scratch>/<GAP-ID>`` and finishes at once.

It drives the self-test and lets plugin authors exercise the whole loop without an agent;
fault injection works here too, so failure paths can be tested without processes.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_chump import hookimpl
from pytest_chump.agents import faults
from pytest_chump.agents.local import Options

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings
    from pytest_chump.core.protocols import Register, SpawnRequest

SCRATCH_ENV = "CHUMP_FAKE_SCRATCH"
SHIPPED_TEXT = "synthetic-shipped\n"
_FAULT_STATUS: dict[str, int | None] = {
    faults.EXIT_1: 1,
    faults.EXIT_0_NO_PR: 0,
    faults.MONITOR_TIMEOUT: None,
}


class FakeHandle:
    """A finished (or, under ``monitor_timeout``, hanging) agent that never had a process."""

    def __init__(self, status: int | None, fault: str | None = None) -> None:
        self.pid: int | None = None
        self.log_path: Path | None = None
        self._status = status
        self._fault = fault
        self._created = time.monotonic()

    def poll(self) -> int | None:
        return self._status

    def terminate(self) -> None:
        if self._status is None:
            self._status = -signal.SIGTERM

    def kill(self) -> None:
        if self._status is None:
            self._status = -signal.SIGKILL

    def stderr_tail(self) -> list[str]:
        return []

    def last_activity(self) -> float:
        return self._created

    def report(self) -> dict[str, object]:
        facts: dict[str, object] = {"fake": True}
        if self._fault is not None:
            facts["fault"] = self._fault
        return facts

    def close(self) -> None:
        return None


class FakeSpawner:
    """Writes ``synthetic-shipped`` to ``<scratch>/<GAP-ID>`` instead of starting an agent.

    ``scratch`` is option ``scratch``, else env ``CHUMP_FAKE_SCRATCH`` of the request, else
    ``<log dir>/../fake``; relative paths are taken from the repository root.
    """

    name = "fake"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.scratch = Options(self.name, settings.spawner_options(self.name), ("scratch",)).text(
            "scratch"
        )

    def spawn(self, request: SpawnRequest) -> FakeHandle:
        mode = faults.fault_mode(request.env)
        faults.raise_if_spawn_fail(mode)
        if mode is None:
            self._write(request)
        handle = FakeHandle(_FAULT_STATUS.get(mode, 0) if mode else 0, mode)
        if request.notify is not None:
            request.notify()
        return handle

    def scratch_dir(self, request: SpawnRequest) -> Path:
        chosen = self.scratch or request.env.get(SCRATCH_ENV, "")
        if not chosen:
            return request.log_path.parent.parent / "fake"
        path = Path(chosen)
        return path if path.is_absolute() else self.settings.repo_root / path

    def _write(self, request: SpawnRequest) -> None:
        folder = self.scratch_dir(request)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / request.gap.id).write_text(SHIPPED_TEXT, encoding="utf-8")


@hookimpl
def chump_register_spawners(register: Register) -> None:
    register("fake", FakeSpawner)
