"""The orchestrator's front door: settings, plugins and backlog, wired once per command.

The CLI, the pytest plugin and the git hooks all start here, so they resolve configuration,
load plugins and pick gaps the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pluggy

from pytest_chump.core import config, config_sources
from pytest_chump.core.errors import PluginError, UsageError
from pytest_chump.core.model import Gap, id_problem
from pytest_chump.core.plugins import Registry, collect, get_plugin_manager
from pytest_chump.core.protocols import PrProvider, Sink, Spawner
from pytest_chump.core.records import Backlog, PickRequest
from pytest_chump.core.remote_refs import resolve
from pytest_chump.core.run import repo_root, run
from pytest_chump.pick.picker import recently_done_ids


@dataclass
class App:
    """Resolved settings plus the plugin manager, shared by every command."""

    settings: config.Settings
    pm: pluggy.PluginManager
    _sinks: dict[str, Sink] | None = None

    @classmethod
    def create(
        cls,
        flags: Mapping[str, object] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        plugins: Iterable[object] = (),
    ) -> App:
        """Resolve the repo root (flag, env ``CHUMP_REPO_ROOT``, git, cwd) and the settings."""
        flags = dict(flags or {})
        env = os.environ if env is None else env
        root = repo_root(flags.pop("repo_root", None), env, cwd)
        settings = config_sources.resolve(root, flags, env)
        pm = get_plugin_manager(extra=plugins, env=env)
        pm.hook.chump_configure(settings=settings)
        return cls(settings, pm)

    def spawners(self) -> Registry[object]:
        """Spawners offered by plugins plus the command spawners defined in configuration."""
        from pytest_chump.agents.command import command_spawners

        registry = collect(self.pm, "spawners")
        for name, factory in command_spawners(self.settings).items():
            registry.register(name, factory)
        return registry

    def spawner_factory(self) -> Callable[[str], Spawner]:
        """name -> spawner instance (one per name), failing early for the configured one."""
        registry, made = self.spawners(), {}
        registry.factory(self.settings.spawner)

        def get(name: str) -> Spawner:
            if name not in made:
                made[name] = registry.factory(name)(self.settings)
            return made[name]  # type: ignore[return-value]

        return get

    def provider(self) -> PrProvider:
        factory = collect(self.pm, "pr_providers").factory(self.settings.pr_provider)
        return factory(self.settings)  # type: ignore[return-value]

    def sinks(self) -> dict[str, Sink]:
        """The configured sinks, by name (created once per App)."""
        if self._sinks is None:
            registry = collect(self.pm, "sinks")
            self._sinks = {
                name: registry.factory(name)(self.settings)  # type: ignore[misc]
                for name in self.settings.sinks
            }
        return self._sinks

    def check_repository(self) -> None:
        """Before a real dispatch: a git repository whose base ref exists, and worktrees that
        stay inside it (one line, exit 2)."""
        root, ref = self.settings.repo_root, self.settings.base_ref
        if run(["git", "rev-parse", "--git-dir"], cwd=root, check=False).returncode != 0:
            raise UsageError(f"{root}: not a git repository (agents work in git worktrees)")
        if not resolve(root, ref):  # chump's fetched copy of a remote base counts too
            raise UsageError(
                f"--base-ref: {ref!r} is not a commit in {root} (fetch it or set base_ref)"
            )
        where = self.settings.worktree_dir.resolve()  # follows links already on the way
        if not where.is_relative_to(root.resolve()):
            raise UsageError(
                f"worktree_root: {self.settings.worktree_dir} leads outside the repository "
                f"(to {where}); a symbolic link on the way?"
            )

    def load_backlog(self, strict: bool | None = None) -> Backlog:
        """The backlog from the configured source; with ``strict`` (default: the setting),
        refused whole when any gap has a problem, else those gaps are quarantined (see
        ``Backlog.dispatchable``)."""
        factory = collect(self.pm, "backlog_sources").factory(self.settings.backlog_source)
        backlog = factory(self.settings).load()  # type: ignore[attr-defined]
        if not isinstance(backlog, Backlog):
            name = self.settings.backlog_source
            raise PluginError(f"backlog source {name!r} returned {type(backlog).__name__}")
        return backlog.strict() if (self.settings.strict if strict is None else strict) else backlog

    def branch_for(self, gap: Gap) -> str:
        return f"{self.settings.branch_prefix}{gap.slug}"

    def worktree_for(self, gap: Gap) -> Path:
        return self.settings.worktree_dir / gap.slug

    def pick(
        self,
        backlog: Backlog,
        slots: int,
        busy: frozenset[str] = frozenset(),
        shipped: frozenset[str] = frozenset(),
    ) -> list[Gap]:
        """Ask the ``chump_pick`` hook for up to ``slots`` gaps to start now."""
        s = self.settings
        request = PickRequest(
            slots=slots,
            done_ids=backlog.done_ids() | shipped,
            busy_ids=busy | shipped,
            kind=s.kind,
            order=s.picker_order,
            bias_threshold=s.bias_threshold,
            bias_window=s.bias_window,
            recently_done=recently_done_ids(backlog.gaps),
        )
        picked = self.pm.hook.chump_pick(gaps=backlog.dispatchable(), request=request)
        if picked is None:
            raise PluginError("no plugin implements chump_pick (is the built-in picker disabled?)")
        chosen = list(picked)[: max(slots, 0)]
        for gap in chosen:  # a plugin's source or picker may hand back anything
            problem = id_problem(gap.id) if isinstance(gap, Gap) else "is not a Gap"
            if problem is not None or (isinstance(gap, Gap) and gap.id in backlog.quarantined):
                why = problem or "has problems in the backlog (quarantined)"
                raise PluginError(f"chump_pick chose a gap that cannot be dispatched: {why}")
        return chosen
