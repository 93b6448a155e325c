"""What every local spawner shares: option checking, binary lookup, fault injection, the spawn.

A backend only says how its argv, extra environment and output parser look; this module turns
that into a started :class:`~pytest_chump.agents.process.ProcessHandle` with uniform error messages.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_chump.agents import faults
from pytest_chump.agents.process import ProcessHandle, start
from pytest_chump.core.errors import BinaryMissing, UsageError
from pytest_chump.core.model import EFFORTS

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings
    from pytest_chump.core.protocols import SpawnRequest

Number = int | float
EffortNumber = Number | dict[str, Number] | None
COMMON_OPTIONS: tuple[str, ...] = ("binary", "model", "extra_args")


class Options:
    """Typed reads of one ``[tool.chump.spawners.<name>]`` table; errors name the table and key."""

    def __init__(self, name: str, table: Mapping[str, Any], known: Iterable[str]) -> None:
        self.name = name
        self.table = dict(table)
        valid = sorted(known)
        for key in sorted(self.table):
            if key not in valid:
                raise self.error(key, f"unknown option (valid: {', '.join(valid)})")

    def error(self, key: str, problem: str) -> UsageError:
        return UsageError(f"[tool.chump.spawners.{self.name}] {key}: {problem}")

    def text(self, key: str) -> str | None:
        value = self.table.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def strings(self, key: str, *, required: bool = False) -> list[str]:
        value = self.table.get(key, None if required else [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of strings, got {value!r}")
        if required and not value:
            raise self.error(key, "must not be empty")
        return list(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def str_table(self, key: str) -> dict[str, str]:
        value = self.table.get(key, {})
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.error(key, f"expected a table of strings, got {value!r}")
        return dict(value)

    def effort_number(self, key: str, *, integer: bool) -> EffortNumber:
        """A positive number, or a table of them per effort (``{s = 30, m = 60}``)."""
        value = self.table.get(key)
        if not isinstance(value, Mapping):
            return None if value is None else self._positive(key, value, integer)
        for effort in value:
            if effort not in (*EFFORTS, "default"):
                valid = ", ".join((*EFFORTS, "default"))
                raise self.error(key, f"unknown effort {effort!r} (valid: {valid})")
        return {k: self._positive(f"{key}.{k}", v, integer) for k, v in value.items()}

    def _positive(self, key: str, value: object, integer: bool) -> Number:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (integer and not isinstance(value, int))
            or value <= 0
        ):
            wanted = "integer" if integer else "number"
            raise self.error(key, f"expected a positive {wanted} or a per-effort table")
        return value


def for_effort(value: EffortNumber, effort: str) -> Number | None:
    """The value of an :meth:`Options.effort_number` for one gap (``default`` as fallback)."""
    if isinstance(value, dict):
        return value.get(effort, value.get("default"))
    return value


def resolve_binary(command: str, env: Mapping[str, str], hint: str) -> str:
    """The absolute path of ``command`` on the agent's PATH, or a one-line error with ``hint``."""
    found = shutil.which(command, path=env.get("PATH", os.defpath))
    if found is None:
        raise BinaryMissing(f"{command}: command not found; {hint}")
    return os.path.abspath(found)


def prompt_file(request: SpawnRequest) -> Path:
    """The prompt as a file: the orchestrator's, else one written next to the log."""
    if request.prompt_file is not None:
        return request.prompt_file
    path = request.log_path.with_suffix(".prompt.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:  # readable by its owner only
        out.write(request.prompt)
    os.chmod(path, 0o600)  # an older, wider file keeps its mode on O_TRUNC
    return path


class JsonLinesParser:
    """Feeds each JSON object line of stdout to :meth:`on_event`; other lines are ignored."""

    def __init__(self) -> None:
        self.facts: dict[str, object] = {}

    def __call__(self, line: str) -> None:
        if not line.lstrip().startswith("{"):
            return
        try:
            event = json.loads(line)
        except ValueError:
            return
        if isinstance(event, dict):
            self.on_event(event)

    def on_event(self, event: dict[str, Any]) -> None:
        """Record facts from one event; subclasses override."""

    def keep(self, event: Mapping[str, Any], *keys: str) -> None:
        self.facts.update({k: event[k] for k in keys if event.get(k) is not None})


class LocalSpawner:
    """Spawns a local agent process through :func:`pytest_chump.agents.process.start`.

    Subclasses set ``name`` and ``default_binary`` and implement :meth:`argv`; they may override
    :meth:`stdin_text`, :meth:`extra_env` and :meth:`parser`.
    """

    name: str = ""
    default_binary: str = ""
    binary_env: str | None = None
    option_keys: tuple[str, ...] = COMMON_OPTIONS
    plain_output = False  # errors arrive as text on stdout: keep notable lines in the ring
    resolve_binaries = True  # False when the agent runs elsewhere (a Ray node): found there

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.options = Options(self.name, settings.spawner_options(self.name), self.option_keys)
        self.extra_args = self.options.strings("extra_args")
        self.binary_option = self.options.text("binary")
        self.model_option = self.options.text("model")

    def spawn(self, request: SpawnRequest) -> ProcessHandle:
        mode = faults.fault_mode(request.env)
        faults.raise_if_spawn_fail(mode)
        argv = faults.fault_argv(mode) or self.argv(request)
        parser = self.parser()
        handle = start(
            argv,
            cwd=request.worktree,
            env={**request.env, **self.extra_env(request)},
            stdin_text=self.stdin_text(request),
            log_path=request.log_path,
            on_stdout_line=parser,
            notify=request.notify,
            ring_stdout=self.plain_output,
            record_path=request.record_path,
            on_started=request.on_started,
            log_max_bytes=request.log_max_bytes,
            secrets=request.secrets,
        )
        if parser is not None:  # the same dict the parser fills, so no event is lost
            handle.facts = parser.facts
        if mode is not None:
            handle.facts["fault"] = mode
        return handle

    def argv(self, request: SpawnRequest) -> list[str]:
        raise NotImplementedError

    def stdin_text(self, request: SpawnRequest) -> str | None:
        return request.prompt

    def extra_env(self, request: SpawnRequest) -> dict[str, str]:
        return {}

    def parser(self) -> JsonLinesParser | None:
        return None

    def binary(self, request: SpawnRequest) -> str:
        return self.binary_in(request.env)

    def binary_in(self, env: Mapping[str, str]) -> str:
        """Env override (``binary_env``) > option ``binary`` > ``default_binary``, on PATH."""
        from_env = env.get(self.binary_env, "") if self.binary_env else ""
        chosen = from_env or self.binary_option or self.default_binary
        if not self.resolve_binaries:
            return chosen
        hint = f'set [tool.chump.spawners.{self.name}] binary = "/path/to/{self.default_binary}"'
        if self.binary_env:
            hint += f" or env {self.binary_env}"
        return resolve_binary(chosen, env, hint)

    def preflight(self, env: Mapping[str, str]) -> None:
        """Before any dispatch: the agent's binary is there (a one-line error if not)."""
        if self.default_binary or self.binary_option:
            self.binary_in(env)

    def model(self, request: SpawnRequest) -> str | None:
        return request.model or self.model_option

    def model_args(self, request: SpawnRequest) -> list[str]:
        model = self.model(request)
        return ["--model", model] if model else []
