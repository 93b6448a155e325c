"""The ``sqlite`` sink (default): reflections in the ``reflections`` table of ``.chump/chump.db``.

Idempotent per dispatch, so delivering the same reflection again after a crash stores it once.
"""

from __future__ import annotations

from pytest_chump import hookimpl
from pytest_chump.core.config import Settings
from pytest_chump.core.protocols import Register
from pytest_chump.core.records import Reflection
from pytest_chump.reflect.record import directive


class SqliteSink:
    name = "sqlite"

    def __init__(self, settings: Settings) -> None:
        self.repo_root = settings.repo_root

    def write(self, reflection: Reflection) -> None:
        from pytest_chump.state.store import Store

        with Store.for_repo(self.repo_root) as store:
            store.insert_reflection(reflection, directive(reflection))


@hookimpl
def chump_register_sinks(register: Register) -> None:
    register("sqlite", SqliteSink)
