"""Module paths of earlier releases, still importable for one release, with a DeprecationWarning.

Modules moved into stage folders (``pytest_chump.runner`` is now
``pytest_chump.agents.process``). An import finder at the end of ``sys.meta_path`` answers only
for the old names in :data:`MOVED`, so it costs nothing until one is imported: a module that
moved whole is the new module itself (patching one patches the other); a module that was split
is a stand-in that forwards each name to the module that holds it now. Built-in plugins
registered under their module names are renamed the same way (:func:`plugin_name`).
Remove this module, and the finder's installation in ``pytest_chump/__init__.py``, in 0.3.
"""

from __future__ import annotations

import atexit
import importlib
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec

_P = "pytest_chump."
_PACKAGES = ("builtins", "commands", "spawners", "sinks")  # folders that are gone entirely
MOVED: dict[str, tuple[str, ...]] = {
    "errors": ("core.errors",),
    "model": ("core.model",),
    "contracts": ("core.protocols", "core.records"),
    "values": ("core.config_values",),
    "config": ("core.config", "core.config_sources"),
    "plugins": ("core.plugins",),
    "proc": ("core.run",),
    "redact": ("core.redact",),
    "store": ("state.store", "state.database", "state.rows"),
    "schema": ("state.schema",),
    "queries": ("state.queries", "state.database"),
    "locks": ("state.locks",),
    "owners": ("state.liveness",),
    "exclusive": ("state.orchestrator_lock",),
    "committed": ("backlog.at_ref",),
    "picker": ("pick.picker",),
    "builtins.picker": ("pick.plugin",),
    "routing": ("learn.routing",),
    "routing_table": ("learn.routing_table",),
    "lessons": ("learn.lessons",),
    "builtins.router": ("learn.plugin",),
    "dispatcher": ("dispatch.dispatcher",),
    "workspaces": ("dispatch.workspaces",),
    "worktrees": ("dispatch.worktrees",),
    "prompt": ("dispatch.prompt",),
    "builtins.prompt": ("dispatch.plugin",),
    "runner": ("agents.process", "agents.logfiles", "dispatch.agent_env"),
    "faults": ("agents.faults",),
    "spawners.base": ("agents.local",),
    "spawners.claude": ("agents.claude",),
    "spawners.codex": ("agents.codex",),
    "spawners.aider": ("agents.aider",),
    "spawners.command": ("agents.command",),
    "spawners.fake": ("agents.fake",),
    "adopted": ("loop.resume", "agents.adopted_handle"),
    "causes": ("reflect.causes", "core.model"),
    "reflection": ("reflect.record", "core.model", "core.records"),
    "sinks.sqlite": ("reflect.sqlite_sink",),
    "sinks.jsonl": ("reflect.jsonl_sink",),
    "sinks.memory": ("reflect.memory_sink",),
    "orchestrator": ("loop.orchestrator", "loop.monitor", "loop.clock"),
    "decide": ("loop.decide",),
    "finisher": ("loop.finish",),
    "progress": ("loop.progress",),
    "app": ("loop.app", "core.run"),
    "testing": ("selftest.fixtures",),
    "fixtures": ("selftest",),  # the synthetic backlog's package (importlib.resources)
    "commands.dispatch": ("cli.dispatch",),
    "commands.validate": ("cli.validate",),
    "commands.status": ("cli.status",),
    "commands.cleanup": ("cli.cleanup",),
    "commands.reflections": ("cli.reflections",),
    "commands.routes": ("cli.routes",),
    "commands.lessons": ("cli.lessons",),
    "commands.self_test": ("cli.self_test",),
    "commands.install_hooks": ("githooks.install",),
    "commands.common": ("cli.setting_flags",),
}
RENAMED: dict[tuple[str, str], str] = {("reflection", "from_dict"): "reflection_from_dict"}


def plugin_name(name: str) -> str:
    """The current name of a built-in plugin given by an earlier module name (with a warning)."""
    old = name.removeprefix(_P)
    if not name.startswith(_P) or len(MOVED.get(old, ())) != 1:
        return name
    new = _P + MOVED[old][0]
    _warn(f"plugin name {name!r} is deprecated: use {new!r}", stacklevel=3)
    return new


def _warn(message: str, stacklevel: int) -> None:
    warnings.warn(message + " (the old name goes away in 0.3)", DeprecationWarning, stacklevel)


class _Loader:
    """Gives an old name its module: the new one, or a stand-in forwarding to several."""

    def __init__(self, old: str) -> None:
        self.old = old
        self.spec: ModuleSpec | None = None  # the new module's own spec, put back after import

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        targets = MOVED.get(self.old)
        if targets is None:  # a folder that is gone: only its modules are importable
            return ModuleType(spec.name)
        if len(targets) == 1:
            module = importlib.import_module(_P + targets[0])
            self.spec = module.__spec__  # the import system is about to overwrite it
            return module
        return _forwarder(spec.name, self.old, targets)

    def exec_module(self, module: ModuleType) -> None:
        if self.spec is not None:
            module.__spec__ = self.spec
        if self.old in MOVED:
            new = " or ".join(_P + target for target in MOVED[self.old])
            # stack: _warn, exec_module, then import machinery (skipped), then the import
            _warn(f"{_P}{self.old} is deprecated: import from pytest_chump or {new}", 3)


def _forwarder(name: str, old: str, targets: Sequence[str]) -> ModuleType:
    module = ModuleType(name, f"Deprecated: moved to {', '.join(_P + t for t in targets)}.")

    def attribute(attr: str) -> object:
        renamed = RENAMED.get((old, attr), attr)
        for target in targets:
            home = importlib.import_module(_P + target)
            if hasattr(home, renamed):
                return getattr(home, renamed)
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    def names() -> list[str]:
        found = {n for t in targets for n in dir(importlib.import_module(_P + t))}
        return sorted(found | {attr for (module, attr) in RENAMED if module == old})

    module.__dict__.update(__getattr__=attribute, __dir__=names)
    return module


class _Finder:
    """A ``sys.meta_path`` finder for the old names only."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        old = fullname.removeprefix(_P)
        if not fullname.startswith(_P) or (old not in MOVED and old not in _PACKAGES):
            return None
        from importlib.machinery import ModuleSpec

        spec = ModuleSpec(fullname, cast("Loader", _Loader(old)), is_package=old in _PACKAGES)
        if old in _PACKAGES:
            spec.submodule_search_locations = []
        return spec


def install() -> None:
    """Add the finder once, last: only imports that found nothing else reach it.

    It is taken out again at exit: a finder left in ``sys.meta_path`` makes the interpreter's
    shutdown slower when many modules are loaded (about 1% of a ``pytest --co`` run).
    """
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        finder = _Finder()
        sys.meta_path.append(finder)
        atexit.register(_uninstall, finder)


def _uninstall(finder: _Finder) -> None:
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)
