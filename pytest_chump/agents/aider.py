"""The ``aider`` spawner: aider in one-shot mode, reading the prompt from a message file.

Aider has no structured output to parse, so the handle reports no facts; its own auto-commits
stay on because the agent is expected to commit its work on the dispatch branch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_chump import hookimpl
from pytest_chump.agents.local import LocalSpawner, prompt_file

if TYPE_CHECKING:
    from pytest_chump.core.protocols import Register, SpawnRequest

BASE_FLAGS: tuple[str, ...] = (
    "--yes-always",  # never wait for a confirmation nobody can give
    "--no-pretty",  # plain text in the log, no colour codes
    "--no-stream",  # whole replies instead of token-by-token redraws
    "--no-check-update",  # no network round trip or upgrade prompt at start
)


class AiderSpawner(LocalSpawner):
    """``aider --message-file <prompt> --yes-always --no-pretty ... [--model M] [extra_args]``.

    The prompt file is the orchestrator's (under ``.chump/prompts/``, never in the worktree),
    else one written next to the dispatch log; stdin is closed at once.
    """

    name = "aider"
    plain_output = True  # litellm errors (rate limits, auth) are printed on stdout
    default_binary = "aider"

    def argv(self, request: SpawnRequest) -> list[str]:
        binary = self.binary(request)
        return [
            binary,
            "--message-file",
            str(prompt_file(request)),
            *BASE_FLAGS,
            *self.model_args(request),
            *self.extra_args,
        ]

    def stdin_text(self, request: SpawnRequest) -> str | None:
        return None


@hookimpl
def chump_register_spawners(register: Register) -> None:
    register("aider", AiderSpawner)
