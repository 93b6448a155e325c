"""The plugin manager: built-ins first, then entry-point group ``chump``, then checks.

Built-in behaviour lives in modules named by ``DEFAULT_PLUGINS`` and is registered exactly
like a third-party plugin, so replacing the default picker is the same act as adding a
spawner. ``CHUMP_LOAD_PLUGINS`` (allow-list) and ``CHUMP_DISABLE_PLUGINS`` (block-list) take
comma-separated plugin names.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Generic, TypeVar

import pluggy

from pytest_chump import PROJECT_NAME, _deprecated, hookspecs
from pytest_chump.core.errors import PluginError

ENTRY_POINT_GROUP = PROJECT_NAME
DEFAULT_PLUGINS: tuple[str, ...] = (
    "pytest_chump.backlog.plugin",
    "pytest_chump.backlog.github",
    "pytest_chump.pick.plugin",
    "pytest_chump.providers.instant",
    "pytest_chump.providers.git",
    "pytest_chump.providers.github",
    "pytest_chump.dispatch.plugin",
    "pytest_chump.learn.plugin",
    "pytest_chump.reflect.sqlite_sink",
    "pytest_chump.reflect.memory_sink",
    "pytest_chump.reflect.jsonl_sink",
    "pytest_chump.reflect.notify",
    "pytest_chump.agents.claude",
    "pytest_chump.agents.codex",
    "pytest_chump.agents.aider",
    "pytest_chump.agents.fake",
    "pytest_chump.agents.ray_spawner",
)
HOOK_NAMES = frozenset(n for n in dir(hookspecs) if n.startswith("chump_"))
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]*")

T = TypeVar("T")


def _names(value: str | None) -> set[str] | None:
    """The plugin names of a comma-separated list; built-ins' earlier module names are renamed."""
    if value is None:
        return None
    return {_deprecated.plugin_name(part.strip()) for part in value.split(",") if part.strip()}


class ChumpPluginManager(pluggy.PluginManager):
    """Also accepts unmarked functions named like a chump hook, as pytest does for ``pytest_*``.

    That lets a ``conftest.py`` or a plain object implement a hook without importing the marker.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name in HOOK_NAMES and callable(getattr(plugin, name, None)):
            return pluggy.HookimplOpts(
                wrapper=False,
                hookwrapper=False,
                optionalhook=False,
                tryfirst=False,
                trylast=False,
                specname=None,
            )
        return opts


def get_plugin_manager(
    extra: Iterable[object] = (), env: Mapping[str, str] | None = None
) -> pluggy.PluginManager:
    """A fresh manager with the specs, the built-ins, ``extra`` objects and entry points loaded."""
    env = os.environ if env is None else env
    pm = ChumpPluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in sorted(_names(env.get("CHUMP_DISABLE_PLUGINS")) or ()):
        pm.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        if not pm.is_blocked(module_name):
            pm.register(importlib.import_module(module_name), name=module_name)
    for plugin in extra:
        pm.register(plugin)
    _load_entry_points(pm, _names(env.get("CHUMP_LOAD_PLUGINS")))
    pm.check_pending()
    return pm


def _load_entry_points(pm: pluggy.PluginManager, allow: set[str] | None) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allow is not None and ep.name not in allow:
            continue
        if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin is the user's to fix
            raise PluginError(
                f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        pm.register(plugin, name=ep.name)


def call_event(
    pm: pluggy.PluginManager, name: str, warn: Callable[[str], None], **kwargs: object
) -> None:
    """Broadcast an event hook; a plugin raising is reported through ``warn``, never re-raised.

    Events fire from the middle of the loop: one plugin's bug must not stop every agent.
    """
    try:
        getattr(pm.hook, name)(**kwargs)
    except Exception as exc:
        warn(f"plugin error in {name}: {type(exc).__name__}: {exc}")


class Registry(Generic[T]):
    """Named factories of one kind (spawner, PR provider, sink) collected from plugins."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str, factory: Callable[..., T]) -> None:
        """Add ``factory`` under ``name``; invalid or duplicate names are plugin bugs."""
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise PluginError(
                f"invalid {self.kind} name {name!r}: use lowercase letters, digits, '.', '_', '-'"
            )
        if name in self._factories:
            raise PluginError(f"{self.kind} {name!r} is registered twice")
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def factory(self, name: str) -> Callable[..., T]:
        """The factory for ``name``; an unknown name fails listing the valid ones."""
        try:
            return self._factories[name]
        except KeyError:
            valid = ", ".join(self.names()) or "none registered"
            raise PluginError(f"unknown {self.kind} {name!r} (valid: {valid})") from None


def collect(pm: pluggy.PluginManager, kind: str) -> Registry[object]:
    """Run the registration hook for ``kind`` (``spawners``, ``pr_providers``, ``sinks``,
    ``backlog_sources``)."""
    registry: Registry[object] = Registry(kind.rstrip("s").replace("_", " "))
    getattr(pm.hook, f"chump_register_{kind}")(register=registry.register)
    return registry
