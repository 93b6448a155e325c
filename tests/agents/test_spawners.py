"""Built-in spawners against scripted agents: argv, options, env, stream facts, faults.

Each scripted agent (``tests/agent_scripts``) records its argv, stdin and environment, so a test
checks exactly what a real CLI would have been given; nothing waits by sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chump.agents import claude
from pytest_chump.agents.aider import AiderSpawner
from pytest_chump.agents.claude import ClaudeSpawner, ClaudeStream
from pytest_chump.agents.codex import CodexSpawner
from pytest_chump.agents.command import command_spawners
from pytest_chump.agents.fake import FakeSpawner
from pytest_chump.agents.faults import fault_argv, fault_mode
from pytest_chump.agents.process import ProcessHandle
from pytest_chump.core.config import Settings
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.model import Gap
from pytest_chump.core.plugins import collect, get_plugin_manager
from pytest_chump.core.protocols import Spawner, SpawnHandle, SpawnRequest
from tests.agent_scripts import wrap

TIMEOUT = 20.0
CLAUDE_FLAGS = [
    "-p",
    "--output-format",
    "stream-json",
    "--verbose",
    "--dangerously-skip-permissions",
]
MakeRequest = Callable[..., SpawnRequest]
Spawn = Callable[[Spawner, SpawnRequest], SpawnHandle]


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


@pytest.fixture
def probe_out(tmp_path: Path) -> Path:
    return tmp_path / "probe.json"


@pytest.fixture
def make_request(tmp_path: Path, bin_dir: Path, probe_out: Path) -> MakeRequest:
    """A request for gap GAP-7 (effort s) whose PATH holds only ``bin_dir``."""

    def make(env: dict[str, str] | None = None, **kw: Any) -> SpawnRequest:
        worktree = tmp_path / "wt"
        worktree.mkdir(exist_ok=True)
        fields: dict[str, Any] = {
            "gap": Gap("GAP-7", effort="s"),
            "prompt": "Do GAP-7 and open a PR.\n",
            "worktree": worktree,
            "branch": "chump/gap-7",
            "log_path": tmp_path / ".chump" / "logs" / "GAP-7.log",
            "env": {"PATH": str(bin_dir), "PROBE_OUT": str(probe_out), **(env or {})},
        }
        return SpawnRequest(**(fields | kw))

    return make


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Spawn and remember the handle; every handle is killed and closed after the test."""
    handles: list[SpawnHandle] = []

    def go(spawner: Spawner, request: SpawnRequest) -> SpawnHandle:
        handle = spawner.spawn(request)
        handles.append(handle)
        return handle

    yield go
    for handle in handles:
        handle.kill()
        handle.close()


def finish(handle: SpawnHandle) -> int | None:
    assert isinstance(handle, ProcessHandle)
    status = handle.wait(TIMEOUT)
    assert status is not None, "agent did not finish in time"
    return status


def probed(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def settings_for(tmp_path: Path, **spawners: dict[str, Any]) -> Settings:
    return Settings(repo_root=tmp_path, spawners=spawners)


# --- registry -------------------------------------------------------------------------


def test_builtin_spawners_are_registered(tmp_path: Path) -> None:
    registry = collect(get_plugin_manager(env={}), "spawners")
    assert {"claude", "codex", "aider", "fake"} <= set(registry.names())
    for name in ("claude", "codex", "aider", "fake"):
        spawner = registry.factory(name)(settings_for(tmp_path))
        assert isinstance(spawner, Spawner)
        assert spawner.name == name


# --- claude ---------------------------------------------------------------------------


def test_claude_argv_prompt_and_report(
    tmp_path: Path, bin_dir: Path, probe_out: Path, make_request: MakeRequest, spawn: Spawn
) -> None:
    agent = wrap("fake_claude.py", bin_dir, "claude")
    options = {
        "model": "opus",
        "max_turns": {"s": 30, "m": 60},
        "max_budget_usd": 2.5,
        "extra_args": ["--append-system-prompt", "be brief"],
    }
    spawner = ClaudeSpawner(settings_for(tmp_path, claude=options))
    request = make_request()
    handle = spawn(spawner, request)
    assert finish(handle) == 0
    seen = probed(probe_out)
    assert seen["argv"] == [
        *CLAUDE_FLAGS,
        *("--model", "opus", "--max-turns", "30", "--max-budget-usd", "2.5"),
        *("--append-system-prompt", "be brief"),
    ]
    assert seen["stdin"] == request.prompt
    assert seen["env"]["AGENT_WRAPPER"] == str(agent)
    assert Path(seen["cwd"]) == request.worktree
    report = handle.report()
    assert report["session_id"] == "sess-42"
    assert report["model"] == "opus"
    assert (report["subtype"], report["is_error"]) == ("success", False)
    assert (report["num_turns"], report["total_cost_usd"]) == (3, 0.0123)
    assert str(report["result_text"]).startswith("PR #7 ")
    assert len(str(report["result_text"])) == 500
    assert handle.stderr_tail() == ["WARN: retrying a tool call"]


def test_claude_effort_without_entry_gets_no_flag_and_request_model_wins(
    tmp_path: Path, bin_dir: Path, probe_out: Path, make_request: MakeRequest, spawn: Spawn
) -> None:
    wrap("fake_claude.py", bin_dir, "claude")
    options = {"model": "opus", "max_turns": {"s": 30}, "max_budget_usd": {"xl": 9}}
    spawner = ClaudeSpawner(settings_for(tmp_path, claude=options))
    request = make_request(gap=Gap("GAP-7", effort="xl"), model="sonnet")
    handle = spawn(spawner, request)
    assert finish(handle) == 0
    assert probed(probe_out)["argv"] == [
        *CLAUDE_FLAGS,
        *("--model", "sonnet", "--max-budget-usd", "9"),
    ]
    assert handle.report()["model"] == "sonnet"


@pytest.mark.parametrize("root", [True, False])
def test_claude_sets_is_sandbox_only_as_root(
    root: bool,
    tmp_path: Path,
    bin_dir: Path,
    probe_out: Path,
    make_request: MakeRequest,
    spawn: Spawn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(claude, "is_root", lambda: root)
    wrap("fake_claude.py", bin_dir, "claude")
    handle = spawn(ClaudeSpawner(settings_for(tmp_path)), make_request())
    assert finish(handle) == 0
    assert probed(probe_out)["env"].get("IS_SANDBOX") == ("1" if root else None)


def test_claude_bin_env_beats_option_binary(
    tmp_path: Path, probe_out: Path, make_request: MakeRequest, spawn: Spawn
) -> None:
    from_env = wrap("fake_claude.py", tmp_path, "claude-from-env")
    from_option = wrap("fake_claude.py", tmp_path, "claude-from-option")
    spawner = ClaudeSpawner(settings_for(tmp_path, claude={"binary": str(from_option)}))
    handle = spawn(spawner, make_request(env={"CHUMP_CLAUDE_BIN": str(from_env)}))
    assert finish(handle) == 0
    assert probed(probe_out)["env"]["AGENT_WRAPPER"] == str(from_env)
    handle = spawn(spawner, make_request())
    assert finish(handle) == 0
    assert probed(probe_out)["env"]["AGENT_WRAPPER"] == str(from_option)


def test_missing_binary_names_it_and_how_to_configure(
    tmp_path: Path, make_request: MakeRequest
) -> None:
    spawner = ClaudeSpawner(settings_for(tmp_path, claude={"binary": "no-such-claude"}))
    with pytest.raises(ChumpError) as info:
        spawner.spawn(make_request())
    message = str(info.value)
    assert message.startswith("no-such-claude: command not found")
    assert "[tool.chump.spawners.claude] binary" in message
    assert "CHUMP_CLAUDE_BIN" in message
    assert "\n" not in message
    with pytest.raises(ChumpError, match=r"^codex: command not found.*spawners\.codex\] binary"):
        CodexSpawner(settings_for(tmp_path)).spawn(make_request())


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_turns": "lots"}, r"\] max_turns: expected a positive integer"),
        ({"max_turns": 2.5}, r"\] max_turns: expected a positive integer"),
        ({"max_turns": True}, r"\] max_turns: expected a positive integer"),
        ({"max_turns": {"s": 0}}, r"\] max_turns\.s: expected a positive integer"),
        ({"max_turns": {"huge": 3}}, r"\] max_turns: unknown effort 'huge'"),
        ({"max_budget_usd": -1}, r"\] max_budget_usd: expected a positive number"),
        ({"extra_args": "--x"}, r"\] extra_args: expected a list of strings"),
        ({"model": 4}, r"\] model: expected a non-empty string"),
        ({"modle": "opus"}, r"\] modle: unknown option \(valid: binary, extra_args"),
    ],
)
def test_claude_rejects_bad_options(tmp_path: Path, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ChumpError, match=r"^\[tool\.chump\.spawners\.claude" + match):
        ClaudeSpawner(settings_for(tmp_path, claude=options))


def test_claude_stream_ignores_what_is_not_an_event() -> None:
    stream = ClaudeStream()
    for line in ("", "plain", "{broken", "[1, 2]", '"text"', '{"type": "assistant"}'):
        stream(line)
    assert stream.facts == {}
    stream('{"type": "result", "subtype": "error_max_turns", "is_error": true, "errors": ["x"]}')
    assert stream.facts == {"subtype": "error_max_turns", "is_error": True, "errors": ["x"]}


# --- codex ----------------------------------------------------------------------------


def test_codex_argv_prompt_and_report(
    tmp_path: Path, bin_dir: Path, probe_out: Path, make_request: MakeRequest, spawn: Spawn
) -> None:
    wrap("fake_codex.py", bin_dir, "codex")
    options = {"model": "gpt-5-codex", "extra_args": ["--skip-git-repo-check"]}
    request = make_request()
    handle = spawn(CodexSpawner(settings_for(tmp_path, codex=options)), request)
    assert finish(handle) == 0
    seen = probed(probe_out)
    assert seen["argv"] == [
        *("exec", "--json", "--sandbox", "workspace-write"),
        *("--model", "gpt-5-codex", "--skip-git-repo-check", "-"),
    ]
    assert seen["stdin"] == request.prompt
    assert "--full-auto" not in seen["argv"]
    assert handle.report() == {
        "thread_id": "thread-9",
        "session_id": "thread-9",
        "is_error": False,
        "usage": {"input_tokens": 120, "cached_input_tokens": 20, "output_tokens": 30},
    }


def test_codex_failure_events_are_reported(
    tmp_path: Path, bin_dir: Path, make_request: MakeRequest, spawn: Spawn
) -> None:
    wrap("fake_codex.py", bin_dir, "codex")
    request = make_request(env={"FAKE_CODEX_FAIL": "1"})
    handle = spawn(CodexSpawner(settings_for(tmp_path)), request)
    assert finish(handle) == 1
    report = handle.report()
    assert report["is_error"] is True
    assert report["error"] == "quota exceeded"
    assert report["errors"] == ["stream disconnected", "quota exceeded"]


# --- aider ----------------------------------------------------------------------------


def test_aider_reads_the_prompt_from_a_file_next_to_the_log(
    tmp_path: Path, bin_dir: Path, probe_out: Path, make_request: MakeRequest, spawn: Spawn
) -> None:
    wrap("probe.py", bin_dir, "aider")
    request = make_request()
    spawner = AiderSpawner(settings_for(tmp_path, aider={"model": "sonnet"}))
    handle = spawn(spawner, request)
    assert finish(handle) == 0
    argv = probed(probe_out)["argv"]
    prompt_path = request.log_path.with_suffix(".prompt.md")
    assert argv[:2] == ["--message-file", str(prompt_path)]
    assert prompt_path.read_text(encoding="utf-8") == request.prompt
    assert {"--yes-always", "--no-pretty"} <= set(argv)
    assert argv[-2:] == ["--model", "sonnet"]
    assert "--no-auto-commits" not in argv
    assert probed(probe_out)["stdin"] == ""
    assert handle.report() == {}


def test_aider_uses_the_orchestrators_prompt_file(
    tmp_path: Path, bin_dir: Path, probe_out: Path, make_request: MakeRequest, spawn: Spawn
) -> None:
    wrap("probe.py", bin_dir, "aider")
    given = tmp_path / ".chump" / "prompts" / "GAP-7.md"
    given.parent.mkdir(parents=True)
    given.write_text("from the orchestrator\n", encoding="utf-8")
    request = make_request(prompt_file=given)
    handle = spawn(AiderSpawner(settings_for(tmp_path)), request)
    assert finish(handle) == 0
    assert probed(probe_out)["argv"][:2] == ["--message-file", str(given)]
    assert not request.log_path.with_suffix(".prompt.md").exists()


# --- command tables -------------------------------------------------------------------


def test_command_spawner_fills_placeholders(
    tmp_path: Path, probe_out: Path, make_request: MakeRequest, spawn: Spawn
) -> None:
    agent = wrap("probe.py", tmp_path, "my-agent")
    table = {
        "command": [str(agent), "--gap", "{gap_id}", "--at={worktree}", "{branch}", "{{x}}"],
        "stdin": False,
        "env": {"MY_AGENT_MODE": "strict"},
    }
    settings = settings_for(tmp_path, mine=table, claude={"model": "opus"})
    factories = command_spawners(settings)
    assert list(factories) == ["mine"]
    spawner = factories["mine"](settings)
    assert spawner.name == "mine"
    request = make_request()
    handle = spawn(spawner, request)
    assert finish(handle) == 0
    seen = probed(probe_out)
    assert seen["argv"] == ["--gap", "GAP-7", f"--at={request.worktree}", "chump/gap-7", "{x}"]
    assert seen["stdin"] == ""
    assert seen["env"]["MY_AGENT_MODE"] == "strict"


def test_command_spawner_prompt_on_stdin_and_prompt_file(
    tmp_path: Path, probe_out: Path, make_request: MakeRequest, spawn: Spawn
) -> None:
    agent = wrap("probe.py", tmp_path, "my-agent")
    settings = settings_for(tmp_path, mine={"command": [str(agent), "{prompt_file}"]})
    request = make_request()
    handle = spawn(command_spawners(settings)["mine"](settings), request)
    assert finish(handle) == 0
    seen = probed(probe_out)
    assert seen["stdin"] == request.prompt
    assert Path(seen["argv"][0]).read_text(encoding="utf-8") == request.prompt


@pytest.mark.parametrize(
    "element",
    ["{nope}", "{0}", "{}", "{gap_id.upper}", "{gap_id[0]}", "{gap_id!r}", "{gap_id:>9}", "{"],
)
def test_command_rejects_other_format_features(tmp_path: Path, element: str) -> None:
    settings = settings_for(tmp_path, mine={"command": ["agent", element]})
    with pytest.raises(ChumpError, match=r"^\[tool\.chump\.spawners\.mine\] command: "):
        command_spawners(settings)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"command": []}, "command: must not be empty"),
        ({"command": "agent --go"}, "command: expected a list of strings"),
        ({"command": ["agent", 3]}, "command: expected a list of strings"),
        ({"command": ["agent"], "stdin": "yes"}, "stdin: expected true or false"),
        ({"command": ["agent"], "env": {"A": 1}}, "env: expected a table of strings"),
        ({"command": ["agent"], "binary": "x"}, "binary: unknown option"),
    ],
)
def test_command_rejects_bad_tables(tmp_path: Path, table: dict[str, Any], match: str) -> None:
    with pytest.raises(ChumpError, match=r"^\[tool\.chump\.spawners\.mine\] " + match):
        command_spawners(settings_for(tmp_path, mine=table))


# --- fake -----------------------------------------------------------------------------


def test_fake_writes_the_gap_file_and_finishes_at_once(
    tmp_path: Path, make_request: MakeRequest
) -> None:
    calls: list[int] = []
    request = make_request(notify=lambda: calls.append(1))
    handle = FakeSpawner(settings_for(tmp_path)).spawn(request)
    written = tmp_path / ".chump" / "fake" / "GAP-7"
    assert written.read_text(encoding="utf-8") == "synthetic-shipped\n"
    assert (handle.pid, handle.poll(), handle.report(), handle.stderr_tail()) == (
        None,
        0,
        {"fake": True},
        [],
    )
    assert calls == [1]
    handle.terminate()
    handle.kill()
    handle.close()
    assert handle.poll() == 0


def test_fake_scratch_option_beats_env(tmp_path: Path, make_request: MakeRequest) -> None:
    request = make_request(env={"CHUMP_FAKE_SCRATCH": str(tmp_path / "from-env")})
    FakeSpawner(settings_for(tmp_path)).spawn(request)
    assert (tmp_path / "from-env" / "GAP-7").is_file()
    FakeSpawner(settings_for(tmp_path, fake={"scratch": "rel"})).spawn(request)
    assert (tmp_path / "rel" / "GAP-7").is_file()


# --- fault injection ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("", None),
        ("bogus", None),
        ("bogus, exit_1,spawn_fail", "exit_1"),
        (" EXIT_0_NO_PR ", "exit_0_no_pr"),
        ("monitor_timeout,exit_1", "monitor_timeout"),
    ],
)
def test_fault_mode_takes_the_first_known_token(value: str, mode: str | None) -> None:
    assert fault_mode({"CHUMP_FAULT_INJECT": value}) == mode
    assert fault_argv("spawn_fail") is None
    assert fault_argv(None) is None


@pytest.mark.parametrize("factory", [ClaudeSpawner, FakeSpawner])
def test_spawn_fail_raises(tmp_path: Path, make_request: MakeRequest, factory: Any) -> None:
    request = make_request(env={"CHUMP_FAULT_INJECT": "spawn_fail"})
    with pytest.raises(ChumpError, match=r"^fault injected: spawn_fail$"):
        factory(settings_for(tmp_path)).spawn(request)


@pytest.mark.parametrize(("mode", "status"), [("exit_1", 1), ("exit_0_no_pr", 0)])
def test_exit_faults_run_without_the_agent_binary(
    tmp_path: Path, make_request: MakeRequest, spawn: Spawn, mode: str, status: int
) -> None:
    request = make_request(env={"CHUMP_FAULT_INJECT": mode})
    handle = spawn(ClaudeSpawner(settings_for(tmp_path)), request)
    assert finish(handle) == status
    assert handle.report() == {"fault": mode}
    fake = FakeSpawner(settings_for(tmp_path)).spawn(request)
    assert fake.poll() == status
    assert not (tmp_path / ".chump" / "fake" / "GAP-7").exists()


def test_monitor_timeout_keeps_running_until_killed(
    tmp_path: Path, make_request: MakeRequest, spawn: Spawn
) -> None:
    request = make_request(env={"CHUMP_FAULT_INJECT": "monitor_timeout"})
    handle = spawn(CodexSpawner(settings_for(tmp_path)), request)
    assert handle.poll() is None
    handle.kill()
    assert finish(handle) == -9
    fake = FakeSpawner(settings_for(tmp_path)).spawn(request)
    assert fake.poll() is None
    fake.terminate()
    assert fake.poll() == -15
