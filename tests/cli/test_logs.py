"""``chump logs`` and the last activity in ``chump status``, on real dispatches: an agent that
speaks claude's stream-json, run through the real loop, its log rendered, tailed, followed."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

from tests.chumpproc import ChumpProcess
from tests.gitrepos import AGENT as SHIP
from tests.gitrepos import repo  # noqa: F401  (fixture)

EXECUTE = ("dispatch", "--no-dry-run", "--watch")
EVENTS = [
    {"type": "system", "subtype": "init", "model": "claude-test"},
    {
        "type": "assistant",
        "message": {"content": [{"type": "text", "text": "Looking at the gap."}]},
    },
    {
        "type": "assistant",
        "message": {
            "content": [{"type": "tool_use", "name": "Bash", "input": {"command": "pytest -q"}}]
        },
    },
    {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "num_turns": 2,
        "total_cost_usd": 0.1,
        "result": "done",
    },
]
FAKE = """\
#!{python}
import json, os, runpy, sys, time
for event in {events!r}:
    print(json.dumps(event), flush=True)
gate = os.environ.get("AGENT_GATE")
while gate and not os.path.exists(gate):
    time.sleep(0.02)
sys.argv = [{ship!r}]
os.environ["AGENT_MODE"] = "ship"
runpy.run_path({ship!r}, run_name="__main__")
"""


def _claude(repo: Path, tmp_path: Path) -> None:
    binary = tmp_path / "claude"
    binary.write_text(FAKE.format(python=sys.executable, events=EVENTS, ship=str(SHIP)))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    text = (repo / "pyproject.toml").read_text().replace('spawner = "script"', 'spawner = "claude"')
    (repo / "pyproject.toml").write_text(
        text + f'\n[tool.chump.spawners.claude]\nbinary = "{binary}"\n'
    )
    (repo / "docs/gaps.yaml").write_text("gaps:\n  - {id: LOG-1, priority: P1, effort: s}\n")


RENDERED = [
    "session started (model claude-test)",
    "assistant: Looking at the gap.",
    "tool: Bash pytest -q",
    "result: success, $0.10, 2 turns: done",
]


def test_logs_renders_a_finished_dispatch_and_tails_it(repo: Path, tmp_path: Path) -> None:
    _claude(repo, tmp_path)
    assert ChumpProcess(repo, *EXECUTE).finish() == 0
    logs = ChumpProcess(repo, "logs", "LOG-1")
    assert logs.finish() == 0, logs.text
    body = [line for line in logs.lines if not line.startswith("=== chump ")]
    assert body[: len(RENDERED)] == RENDERED
    tail = ChumpProcess(repo, "logs", "LOG-1", "--tail", "2")
    tail.finish()
    assert len(tail.lines) == 2
    raw = ChumpProcess(repo, "logs", "1", "--raw")
    raw.finish()
    assert json.dumps(EVENTS[0]) in raw.lines


def test_logs_follows_a_running_agent_and_status_shows_its_last_line(
    repo: Path, tmp_path: Path
) -> None:
    _claude(repo, tmp_path)
    gate = tmp_path / "go"
    run = ChumpProcess(repo, *EXECUTE, env={"AGENT_GATE": str(gate)})
    run.wait_for("DISPATCHED: LOG-1")
    for _ in range(100):  # until the agent has written its stream (bounded)
        status = ChumpProcess(repo, "status")
        status.finish()
        if any("last: result: success" in line for line in status.lines):
            break
    assert any("last: result: success, $0.10, 2 turns: done" in ln for ln in status.lines)
    follow = ChumpProcess(repo, "logs", "LOG-1", "-f")
    follow.wait_for("result: success")
    gate.write_text("go\n")
    assert run.finish() == 0, run.text
    assert follow.finish(timeout=60) == 0  # it ends when the dispatch does
    assert "OUTCOME: LOG-1 shipped" in run.text


def test_an_unknown_dispatch_is_one_line(repo: Path, tmp_path: Path) -> None:
    _claude(repo, tmp_path)
    ChumpProcess(repo, *EXECUTE).finish()
    missing = ChumpProcess(repo, "logs", "NOPE-9")
    assert missing.finish() == 2
    assert missing.lines == ["chump: error: NOPE-9: no such dispatch (see `chump status`)"]


def test_an_unsafe_id_is_one_line_not_a_traceback(repo: Path) -> None:
    for command in ("logs", "retry"):
        refused = ChumpProcess(repo, command, "../x y")
        assert refused.finish() == 2
        (line,) = refused.lines
        assert line.startswith(f"chump: error: chump {command}: argument ID: gap id '../x y'")
