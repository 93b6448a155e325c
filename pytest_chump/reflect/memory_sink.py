"""The ``memory`` sink: reflections kept in a list, for the self-test and plugin authors' tests."""

from __future__ import annotations

import threading

from pytest_chump import hookimpl
from pytest_chump.core.config import Settings
from pytest_chump.core.protocols import Register
from pytest_chump.core.records import Reflection


class MemorySink:
    name = "memory"

    def __init__(self, settings: Settings | None = None) -> None:
        self.reflections: list[Reflection] = []
        self._lock = threading.Lock()

    def write(self, reflection: Reflection) -> None:
        with self._lock:
            self.reflections.append(reflection)


@hookimpl
def chump_register_sinks(register: Register) -> None:
    register("memory", MemorySink)
