"""The ``claude`` spawner: Claude Code in print mode, prompt on stdin, stream-json on stdout.

Its stream is parsed as it arrives, so the handle reports the session, model, turns, cost and
whether the run ended in error (the ``result`` event) without scraping the log afterwards.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pytest_chump import hookimpl
from pytest_chump.agents.local import COMMON_OPTIONS, JsonLinesParser, LocalSpawner, for_effort

if TYPE_CHECKING:
    from pytest_chump.agents.local import Number
    from pytest_chump.core.config import Settings
    from pytest_chump.core.protocols import Register, SpawnRequest

BASE_FLAGS: tuple[str, ...] = (
    "-p",
    "--output-format",
    "stream-json",
    "--verbose",
    "--dangerously-skip-permissions",
)
RESULT_TEXT_LIMIT = 500


def is_root() -> bool:
    """Claude Code refuses to skip permissions as root unless told it runs in a sandbox."""
    return os.geteuid() == 0


class ClaudeStream(JsonLinesParser):
    """Facts from the ``system``/``init`` and final ``result`` events of ``stream-json``."""

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            self.keep(event, "model", "session_id")
        elif kind == "result":
            self.keep(
                event,
                "subtype",
                "is_error",
                "num_turns",
                "total_cost_usd",
                "session_id",
                "errors",
                "usage",
            )
            text = event.get("result")
            if isinstance(text, str):
                self.facts["result_text"] = text[:RESULT_TEXT_LIMIT]


class ClaudeSpawner(LocalSpawner):
    """``claude -p --output-format stream-json --verbose --dangerously-skip-permissions``."""

    name = "claude"
    default_binary = "claude"
    binary_env = "CHUMP_CLAUDE_BIN"
    option_keys = (*COMMON_OPTIONS, "max_turns", "max_budget_usd")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.max_turns = self.options.effort_number("max_turns", integer=True)
        self.max_budget_usd = self.options.effort_number("max_budget_usd", integer=False)

    def argv(self, request: SpawnRequest) -> list[str]:
        effort = request.gap.effort
        return [
            self.binary(request),
            *BASE_FLAGS,
            *self.model_args(request),
            *_flag("--max-turns", for_effort(self.max_turns, effort)),
            *_flag("--max-budget-usd", for_effort(self.max_budget_usd, effort)),
            *self.extra_args,
        ]

    def extra_env(self, request: SpawnRequest) -> dict[str, str]:
        return {"IS_SANDBOX": "1"} if is_root() else {}

    def parser(self) -> ClaudeStream:
        return ClaudeStream()


def _flag(flag: str, value: Number | None) -> list[str]:
    return [] if value is None else [flag, str(value)]


@hookimpl
def chump_register_spawners(register: Register) -> None:
    register("claude", ClaudeSpawner)
