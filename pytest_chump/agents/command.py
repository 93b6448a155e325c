"""Spawners defined without code: a ``[tool.chump.spawners.<name>]`` table with a ``command``.

``command`` is an argv list whose elements may hold ``{gap_id}``, ``{branch}``, ``{worktree}``
and ``{prompt_file}``; nothing else of Python's format language is allowed, so a table cannot
reach attributes or indexes. The orchestrator merges :func:`command_spawners` into its registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from pytest_chump.agents.local import LocalSpawner, Options, prompt_file, resolve_binary
from pytest_chump.core.placeholders import placeholders

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings
    from pytest_chump.core.protocols import Spawner, SpawnRequest

PLACEHOLDERS: tuple[str, ...] = ("gap_id", "branch", "worktree", "prompt_file")


def check_template(options: Options, command: list[str]) -> set[str]:
    """Reject any replacement field but the plain placeholders; the placeholders used."""
    used: set[str] = set()
    for element in command:
        try:
            used |= placeholders(element, PLACEHOLDERS)
        except ValueError as exc:
            raise options.error("command", f"{element!r}: {exc}") from None
    return used


class CommandSpawner(LocalSpawner):
    """Runs the table's ``command`` with placeholders filled; ``stdin``, ``env`` optional."""

    option_keys = ("command", "stdin", "env", "extra_args")
    plain_output = True  # an unknown agent's errors may be on either stream

    def __init__(self, settings: Settings, name: str) -> None:
        self.name = name
        super().__init__(settings)
        self.command = self.options.strings("command", required=True)
        self.placeholders = check_template(self.options, self.command)
        self.use_stdin = self.options.flag("stdin", default=True)
        self.extra_vars = self.options.str_table("env")

    def argv(self, request: SpawnRequest) -> list[str]:
        values = {
            "gap_id": request.gap.id,
            "branch": request.branch,
            "worktree": str(request.worktree),
            "prompt_file": str(prompt_file(request)) if "prompt_file" in self.placeholders else "",
        }
        argv = [element.format_map(values) for element in self.command]
        if self.resolve_binaries:
            hint = f"fix the command list of [tool.chump.spawners.{self.name}]"
            argv[0] = resolve_binary(argv[0], request.env, hint)
        return [*argv, *self.extra_args]

    def preflight(self, env: Mapping[str, str]) -> None:
        """Before any dispatch: the command's program is there (placeholders aside)."""
        if "{" not in self.command[0]:
            hint = f"fix the command list of [tool.chump.spawners.{self.name}]"
            resolve_binary(self.command[0], env, hint)

    def stdin_text(self, request: SpawnRequest) -> str | None:
        return request.prompt if self.use_stdin else None

    def extra_env(self, request: SpawnRequest) -> dict[str, str]:
        return dict(self.extra_vars)


def _factory(name: str) -> Callable[[Settings], Spawner]:
    def make(settings: Settings) -> Spawner:
        return CommandSpawner(settings, name)

    return make


def command_spawners(settings: Settings) -> dict[str, Callable[[Settings], Spawner]]:
    """One factory per spawner table with a ``command`` key; bad tables fail here, at startup."""
    factories: dict[str, Callable[[Settings], Spawner]] = {}
    for name, table in sorted(settings.spawners.items()):
        if "command" in table:
            CommandSpawner(settings, name)
            factories[name] = _factory(name)
    return factories
