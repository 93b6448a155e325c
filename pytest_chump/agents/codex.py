"""The ``codex`` spawner: ``codex exec --json`` in a workspace-write sandbox, prompt on stdin.

The JSONL events it prints are parsed as they arrive so the handle reports the thread id, the
token usage of completed turns and any ``turn.failed``/``error`` message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_chump import hookimpl
from pytest_chump.agents.local import JsonLinesParser, LocalSpawner

if TYPE_CHECKING:
    from pytest_chump.core.protocols import Register, SpawnRequest

BASE_FLAGS: tuple[str, ...] = ("exec", "--json", "--sandbox", "workspace-write")
READ_PROMPT_FROM_STDIN = "-"


class CodexStream(JsonLinesParser):
    """Facts from ``thread.started``, ``turn.completed``, ``turn.failed`` and ``error`` events."""

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "thread.started" and isinstance(event.get("thread_id"), str):
            self.facts["thread_id"] = self.facts["session_id"] = event["thread_id"]
        elif kind == "turn.completed":
            self.facts.setdefault("is_error", False)
            self._add_usage(event.get("usage"))
        elif kind == "turn.failed":
            self._fail(event.get("error"))
        elif kind == "error":
            self._fail(event)

    def _add_usage(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        totals = self.facts.setdefault("usage", {})
        assert isinstance(totals, dict)
        for key, count in usage.items():
            if isinstance(count, int) and not isinstance(count, bool):
                totals[key] = totals.get(key, 0) + count

    def _fail(self, payload: object) -> None:
        message = payload.get("message") if isinstance(payload, dict) else None
        text = message if isinstance(message, str) and message else "unknown error"
        self.facts["is_error"] = True
        self.facts["error"] = text
        errors = self.facts.setdefault("errors", [])
        assert isinstance(errors, list)
        errors.append(text)


class CodexSpawner(LocalSpawner):
    """``codex exec --json --sandbox workspace-write [--model M] [extra_args] -``."""

    name = "codex"
    default_binary = "codex"

    def argv(self, request: SpawnRequest) -> list[str]:
        return [
            self.binary(request),
            *BASE_FLAGS,
            *self.model_args(request),
            *self.extra_args,
            READ_PROMPT_FROM_STDIN,
        ]

    def parser(self) -> CodexStream:
        return CodexStream()


@hookimpl
def chump_register_spawners(register: Register) -> None:
    register("codex", CodexSpawner)
