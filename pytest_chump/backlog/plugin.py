"""The built-in ``yaml`` backlog source: the ``backlog`` setting names a YAML file, or a
directory whose ``*.yaml`` / ``*.yml`` files hold the gaps (one or many per file)."""

from __future__ import annotations

from pytest_chump import hookimpl
from pytest_chump.backlog import load_backlog
from pytest_chump.core.config import Settings
from pytest_chump.core.protocols import Register
from pytest_chump.core.records import Backlog
from pytest_chump.core.run import display_path


class YamlSource:
    name = "yaml"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def load(self) -> Backlog:
        path = self.settings.backlog_path
        return load_backlog(path, display_path(path), self.settings.status_aliases)


@hookimpl
def chump_register_backlog_sources(register: Register) -> None:
    register("yaml", YamlSource)
