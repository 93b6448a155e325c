"""Agent streams made readable: the recorded claude and codex outputs, each event kind, and
hostile text (escapes, secrets, huge lines) bounded."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_chump.agents.render import render

FIXTURES = Path(__file__).parents[2] / "fixtures" / "agents"


def shown(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [text for text in map(render, lines) if text]


def test_the_real_claude_stream_when_not_logged_in() -> None:
    assert shown(FIXTURES / "claude-not-logged-in.stdout.jsonl") == [
        "session started (model claude-opus-4-8[1m])",
        "assistant: Not logged in · Please run /login",
        "result: error, 1 turns: Not logged in · Please run /login",
    ]


def test_the_real_codex_stream_without_network() -> None:
    lines = shown(FIXTURES / "codex-offline.stdout.jsonl")
    assert lines[0] == "session started"
    assert (
        lines[-1]
        == "error: Reconnecting... waiting for network (Connection failed: error sending request)"
    )


def event(**fields: object) -> str:
    return json.dumps(fields)


def test_claude_tool_calls_results_and_the_final_result() -> None:
    use = {"type": "tool_use", "name": "Bash", "input": {"command": "pytest -q"}}
    said = {"type": "text", "text": "Running the tests."}
    assert render(event(type="assistant", message={"content": [said, use]})) == (
        "assistant: Running the tests. | tool: Bash pytest -q"
    )
    result = {"type": "tool_result", "content": [{"type": "text", "text": "3 passed"}]}
    assert render(event(type="user", message={"content": [result]})) == "tool result: 3 passed"
    done = event(
        type="result",
        subtype="success",
        is_error=False,
        num_turns=4,
        total_cost_usd=0.42,
        result="Shipped #12",
    )
    assert render(done) == "result: success, $0.42, 4 turns: Shipped #12"
    assert render(event(type="stream_event", event={})) is None


def test_codex_items() -> None:
    run = {"type": "command_execution", "command": "make test", "exit_code": 2}
    assert render(event(type="item.completed", item=run)) == "tool: make test (exit 2)"
    message = {"type": "agent_message", "text": "All done."}
    assert render(event(type="item.completed", item=message)) == "assistant: All done."
    usage = {"input_tokens": 10, "output_tokens": 3}
    assert render(event(type="turn.completed", usage=usage)) == "turn done (10 in, 3 out)"


def test_plain_lines_stay_and_hostile_text_is_made_safe() -> None:
    assert render("just a line") == "just a line"
    assert render("") is None
    assert render("\x1b]0;pwned\x07\x1b[2J") == "\\x1b]0;pwned\\x07\\x1b[2J"
    assert render("token ghp_" + "a" * 36) == "token [REDACTED]"
    assert render("k " + "hunter2-secret", secrets=["hunter2-secret"]) == "k [REDACTED]"
    huge = render(
        event(type="assistant", message={"content": [{"type": "text", "text": "x" * 10**6}]})
    )
    assert huge is not None
    assert len(huge) < 400
