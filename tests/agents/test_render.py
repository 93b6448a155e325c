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


# --- one dispatch's part of a shared log ----------------------------------------------------


def _attempts_log(path: Path, lines_each: int = 3, pad: int = 0) -> None:
    """Three attempts of one gap in one log, each between its supervisor's marks."""
    from pytest_chump.core.supervisor import mark_line

    out = b""
    for group in (101, 202, 303):
        out += mark_line(f"start: /usr/bin/agent pid {group + 1} group {group}")
        for i in range(lines_each):
            out += f"attempt {group} line {i}{'x' * pad}\n".encode()
        out += mark_line("exit: status 0")
    path.write_bytes(out)


def test_each_dispatch_sees_its_own_part_of_a_shared_log(tmp_path: Path) -> None:
    from pytest_chump.agents.render import log_lines, log_tail

    log = tmp_path / "gap.log"
    _attempts_log(log)
    first = log_lines(log, 101)
    assert first[0].startswith("=== chump ")
    assert [ln for ln in first if not ln.startswith("===")] == [
        "attempt 101 line 0",
        "attempt 101 line 1",
        "attempt 101 line 2",
    ]
    assert not [ln for ln in first if "attempt 202" in ln or "group 303" in ln]
    assert log_tail(log, 101, 2, [], latest=False) == ["attempt 101 line 2", first[-1]]
    assert log_tail(log, 202, 1, [], latest=False)[-1].endswith("exit: status 0 ===")
    assert log_tail(log, 202, 3, [], latest=False)[0] == "attempt 202 line 1"
    assert log_tail(log, 303, 2, [], latest=True)[0] == "attempt 303 line 2"
    whole = log_tail(log, None, 100, [])
    assert len(whole) == 3 * 5


def test_a_tail_reads_across_chunks_and_the_rotated_part(tmp_path: Path) -> None:
    from pytest_chump.agents.render import log_tail

    log = tmp_path / "gap.log"
    _attempts_log(log, lines_each=4000, pad=40)  # ~200 KB per attempt: many chunks
    rotated = log.with_name("gap.log.1")
    rotated.write_bytes(log.read_bytes()[: log.stat().st_size // 2])
    log.write_bytes(log.read_bytes()[log.stat().st_size // 2 :])
    tail = log_tail(log, 101, 3, [], latest=False)  # its part is in the rotated file
    assert tail[0].startswith("attempt 101 line 3998x")
    assert tail[1].startswith("attempt 101 line 3999x")
    assert tail[2].endswith("exit: status 0 ===")
    newest = log_tail(log, 303, 2, [], latest=True)
    assert newest[0].startswith("attempt 303 line 3999x")
    assert log_tail(log, 202, 5000, [], latest=False)[1].startswith("attempt 202 line 0x")
