"""The agent's supervisor, with real processes: identity before the agent acts, exit status
that outlives the orchestrator, secrets masked and logs capped as they are written.

Orchestrators are driver processes that die (SIGKILL, ``os._exit``) at chosen points; every
wait is bounded and waits on a condition (process exit, a file appearing), never on time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_chump.agents import process as runner
from pytest_chump.agents.adopted_handle import AdoptedHandle
from pytest_chump.agents.logfiles import read_record, stderr_log
from pytest_chump.core import supervisor
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.redact import redaction_rules
from pytest_chump.state.liveness import proc_start_ticks
from tests.waiting import alive, until

TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]
SECRET = "hunter2-very-secret-value"


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., runner.ProcessHandle]]:
    handles: list[runner.ProcessHandle] = []

    def go(code: str, **kw: Any) -> runner.ProcessHandle:
        kw.setdefault("stdin_text", None)
        kw.setdefault("log_path", tmp_path / "logs" / "agent.log")
        kw.setdefault("env", {"PATH": os.environ.get("PATH", os.defpath)})
        handle = runner.start([sys.executable, "-c", code], cwd=tmp_path, **kw)
        handles.append(handle)
        return handle

    yield go
    for handle in handles:
        handle.close()


# --- identity -------------------------------------------------------------------------


def test_the_identity_record_is_written_before_start_returns_and_gets_the_exit_status(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    record = tmp_path / "agents" / "7.json"
    handle = start("import sys; sys.stdin.read(); sys.exit(3)", stdin_text="go", record_path=record)
    first = read_record(record)
    assert first["started"] is True
    assert first["supervisor"] == first["pgid"] == handle.pid
    assert first["pid"] != handle.pid
    assert "exit" not in first
    assert handle.wait(TIMEOUT) == 3
    assert read_record(record)["exit"] == 3


def test_an_agent_killed_by_a_signal_reports_the_signal(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    record = tmp_path / "r.json"
    handle = start("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", record_path=record)
    assert handle.wait(TIMEOUT) == -signal.SIGSEGV
    assert read_record(record)["exit"] == -signal.SIGSEGV


def test_on_started_runs_before_the_agent_may_act(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    marker, record = tmp_path / "acted", tmp_path / "r.json"
    seen: list[tuple[int, bool, bool]] = []

    def started(pid: int) -> None:
        seen.append((pid, marker.exists(), record.exists()))

    code = f"open({str(marker)!r}, 'w').close()"
    handle = start(code, record_path=record, on_started=started)
    assert handle.wait(TIMEOUT) == 0
    assert seen == [(handle.pid, False, False)]
    assert marker.exists()


def test_a_failing_on_started_leaves_no_agent(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    marker = tmp_path / "acted"
    pids: list[int] = []

    def started(pid: int) -> None:
        pids.append(pid)
        raise ChumpError("database is locked")

    with pytest.raises(ChumpError, match="database is locked"):
        start(f"open({str(marker)!r}, 'w').close()", on_started=started)
    assert not alive(pids[0])
    assert not marker.exists()


DIES_IN_ON_STARTED = """\
import os, signal, sys
from pathlib import Path
from pytest_chump.agents import process as runner
tmp = Path(sys.argv[1])
def started(pid):
    (tmp / "supervisor.pid").write_text(str(pid))
    os.kill(os.getpid(), signal.SIGKILL)  # the orchestrator dies right after recording it
runner.start(
    [sys.executable, "-c", "open('acted', 'w').close()"],
    cwd=tmp, env={"PATH": os.environ["PATH"]}, stdin_text="prompt",
    log_path=tmp / "a.log", record_path=tmp / "r.json", on_started=started,
)
"""


def test_an_orchestrator_dying_before_the_release_leaves_no_agent_running(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", DIES_IN_ON_STARTED, str(tmp_path)], env=env, timeout=TIMEOUT
    )
    assert done.returncode == -signal.SIGKILL
    pid = int((tmp_path / "supervisor.pid").read_text())
    assert until(lambda: not alive(pid))  # it read end-of-file instead of a header
    assert not (tmp_path / "acted").exists()
    assert not (tmp_path / "r.json").exists()
    adopted = AdoptedHandle(pid, "", tmp_path / "a.log", tmp_path / "r.json")
    assert not adopted.released()


ORPHANS_AN_AGENT = """\
import os, sys
from pathlib import Path
from pytest_chump.agents import process as runner
tmp = Path(sys.argv[1])
code = "import os, sys, time\\nwhile not os.path.exists('release'): time.sleep(0.01)\\nsys.exit(5)"
handle = runner.start(
    [sys.executable, "-c", code], cwd=tmp, env={"PATH": os.environ["PATH"]}, stdin_text=None,
    log_path=tmp / "a.log", record_path=tmp / "r.json",
)
print(handle.pid, flush=True)
os._exit(0)
"""


def test_an_adopted_agent_s_exit_status_is_known(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", ORPHANS_AN_AGENT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout)
    handle = AdoptedHandle(pid, proc_start_ticks(pid), tmp_path / "a.log", tmp_path / "r.json")
    assert handle.released()
    assert handle.poll() is None
    (tmp_path / "release").touch()
    assert until(lambda: handle.poll() is not None)
    assert handle.poll() == 5
    assert handle.report() == {"adopted": True, "exit_status_unknown": False}


def test_a_module_in_the_agent_s_directory_cannot_shadow_the_supervisor_s(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    for name in ("json", "selectors", "subprocess"):
        (tmp_path / f"{name}.py").write_text("open('shadowed', 'w').close()\n")
    handle = start("print('fine')", record_path=tmp_path / "r.json")
    assert handle.wait(TIMEOUT) == 0
    assert not (tmp_path / "shadowed").exists()


# --- masking ----------------------------------------------------------------------------


def test_secrets_are_masked_in_both_logs_before_they_reach_the_disk(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    code = (
        "import os, sys\n"
        "for v in ('MY_API_TOKEN', 'TABLE_VALUE'):\n"
        "    print('out', os.environ[v]); print('err', os.environ[v], file=sys.stderr)\n"
        "print('bearer', 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz')\n"
        "print('gh', 'ghp_' + 'a' * 36)\n"
    )
    env = {"PATH": os.environ["PATH"], "MY_API_TOKEN": SECRET, "TABLE_VALUE": "table-secret-42"}
    seen: list[str] = []
    log = tmp_path / "logs" / "agent.log"
    handle = start(code, env=env, secrets=("table-secret-42",), on_stdout_line=seen.append)
    assert handle.wait(TIMEOUT) == 0
    text = log.read_text() + stderr_log(log).read_text() + "\n".join(seen)
    assert SECRET not in text
    assert "table-secret-42" not in text
    assert "abcdefghijklmnopqrstuvwxyz" not in text
    assert "ghp_aaaa" not in text
    assert text.count("[REDACTED]") == 2 * 5 + 2


def test_the_orchestrator_s_own_secrets_are_masked_even_if_the_agent_gets_them_otherwise(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_PASSWORD", "orchestrator-only-pw")
    value = "orchestrator-only" + "-pw"  # the agent reads it from a file, not its env
    handle = start(f"print({value!r})")
    assert handle.wait(TIMEOUT) == 0
    assert "orchestrator-only-pw" not in (tmp_path / "logs" / "agent.log").read_text()


def test_a_multi_line_secret_is_masked_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nMIIEabcdefghijklmnop\nqrstuvwxyz0123456789\n-----END KEY-----"
    mask = supervisor.Masker([key], [])
    assert mask(b"x MIIEabcdefghijklmnop y") == b"x [REDACTED] y"
    assert mask(b"qrstuvwxyz0123456789") == b"[REDACTED]"


def test_a_long_line_is_cut_in_pieces_but_never_inside_a_secret(tmp_path: Path) -> None:
    log = supervisor.CappedLog(str(tmp_path / "a.log"), 1 << 40)
    stream = supervisor.Stream(0, log, supervisor.Masker([SECRET], redaction_rules()))
    edge = supervisor.LONG_LINE - 5  # the secret spans the cut
    data = b"x" * edge + SECRET.encode() + b"y" * 100
    for start in range(0, len(data), 65536):
        stream.feed(data[start : start + 65536])
    stream.feed(b"\n")
    log.close()
    text = (tmp_path / "a.log").read_bytes()
    assert SECRET.encode() not in text.replace(b"\n", b"")
    assert b"[REDACTED]" in text
    assert text.replace(b"\n", b"").replace(b"[REDACTED]", b"") == b"x" * edge + b"y" * 100


# --- capping ----------------------------------------------------------------------------


def test_logs_are_capped_on_disk_and_keep_the_newest_output(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    code = (
        "import sys\n"
        "for i in range(20000):\n"
        "    print(f'line {i:05d} ' + 'x' * 90)\n"
        "    print(f'ERROR {i:05d} ' + 'y' * 90, file=sys.stderr)\n"
    )
    seen: list[str] = []
    cap = 256 * 1024
    handle = start(code, log_max_bytes=cap, on_stdout_line=seen.append)
    assert handle.wait(TIMEOUT) == 0
    logs = tmp_path / "logs"
    for name in ("agent.log", "agent.stderr.log"):
        files = [logs / name, logs / f"{name}.1"]
        assert sum(f.stat().st_size for f in files) <= cap
        assert all(f.stat().st_size <= cap // 2 for f in files)
    newest = (logs / "agent.log").read_text().splitlines()
    assert newest[-1].endswith("exit: status 0 ===")
    assert newest[-2].startswith("line 19999 ")
    assert stderr_log(logs / "agent.log").read_text().splitlines()[-1].startswith("ERROR 19999 ")
    # the follower read on across the rotations, in order, up to the last line (on a busy
    # machine the followers may still be draining when wait() gave up waiting for them)
    assert until(lambda: bool(seen) and seen[-1].startswith("line 19999 "))
    assert until(lambda: handle.stderr_tail()[-1].startswith("ERROR 19999 "))
    numbers = [int(line.split()[1]) for line in seen]
    assert numbers == sorted(set(numbers))
    assert numbers[0] == 0
    assert numbers[-1] == 19999
    assert len(numbers) > 2 * 1300  # more than the disk keeps: it read rotated files too


def test_the_supervisor_exits_without_an_agent_on_a_truncated_header(tmp_path: Path) -> None:
    path = Path(supervisor.__file__)
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", str(path)],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    header = supervisor.encode_header({"argv": ["true"], "record": str(tmp_path / "r.json")})
    out, _ = proc.communicate(header[:-3], timeout=TIMEOUT)
    assert proc.returncode == 3
    assert out == b""
    assert not (tmp_path / "r.json").exists()


def test_the_header_framing_round_trips(tmp_path: Path) -> None:
    header = {"argv": ["a", "ü"], "secrets": ["x" * 10], "record": "r"}
    read, write = os.pipe()
    os.write(write, supervisor.encode_header(header) + b"the prompt")
    os.close(write)
    assert supervisor.read_header(read) == header
    assert os.read(read, 100) == b"the prompt"
    os.close(read)
    assert json.loads(supervisor.encode_header(header).split(b"\n", 1)[1]) == header


# --- the audit's cases --------------------------------------------------------------------

EXITS_AT_ONCE = """\
import os, sys
from pathlib import Path
from pytest_chump.agents import process as runner
tmp = Path(sys.argv[1])
code = "import sys; data = sys.stdin.read(); open('got', 'w').write(str(len(data)))"
handle = runner.start(
    [sys.executable, "-c", code], cwd=tmp, env={"PATH": os.environ["PATH"]},
    stdin_text="p" * 300_000 + "THE END", log_path=tmp / "a.log", record_path=tmp / "r.json",
)
print(handle.pid, flush=True)
os._exit(0)  # dispatch without --watch: the orchestrator is gone at once
"""


def test_the_whole_prompt_arrives_even_when_the_orchestrator_exits_at_once(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", EXITS_AT_ONCE, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert until(lambda: (tmp_path / "got").exists() and (tmp_path / "got").read_text() != "")
    assert (tmp_path / "got").read_text() == str(300_000 + len("THE END"))
    assert until(lambda: read_record(tmp_path / "r.json").get("exit") == 0)


def test_an_agent_whose_supervisor_alone_was_killed_is_still_watched_and_stopped(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    code = "import time\nwhile True: time.sleep(0.05)"
    record = tmp_path / "r.json"
    handle = start(code, record_path=record)
    agent = int(read_record(record)["pid"])
    ticks = proc_start_ticks(handle.pid or 0)
    os.kill(handle.pid or 0, signal.SIGKILL)  # `kill -9 <supervisor>`: the agent lives on
    assert handle.wait(TIMEOUT) is not None
    assert alive(agent)
    adopted = AdoptedHandle(handle.pid, ticks, tmp_path / "logs" / "agent.log", record)
    assert adopted.poll() is None  # still at work: its dispatch must not end
    adopted.kill()
    assert until(lambda: not alive(agent))
    assert adopted.poll() == 0
    assert adopted.report()["exit_status_unknown"] is True


def test_stragglers_left_by_an_agent_are_stopped_at_teardown(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "open('child', 'w').write(str(child.pid))\n"
    )
    handle = start(code)
    assert handle.wait(TIMEOUT) == 0
    child = int((tmp_path / "child").read_text())
    assert alive(child)  # the agent exited; its child lives on in its process group
    handle.kill()  # what the finisher does before removing the worktree
    assert until(lambda: not alive(child))


def test_sigterm_to_the_supervisor_alone_reaches_the_agent(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
        "open('ready', 'w').close()\n"
        "while True: time.sleep(0.05)\n"
    )
    handle = start(code, record_path=tmp_path / "r.json")
    assert until((tmp_path / "ready").exists)
    os.kill(handle.pid or 0, signal.SIGTERM)  # `kill <pid>` as `chump status` shows it
    assert handle.wait(TIMEOUT) == 42
    assert read_record(tmp_path / "r.json")["exit"] == 42


def test_a_lost_record_keeps_the_agent_s_status(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    folder = tmp_path / "agents"
    code = "import os, time\nwhile not os.path.exists('go'): time.sleep(0.02)\nraise SystemExit(9)"
    handle = start(code, record_path=folder / "1.json")
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()  # the record cannot be written at the end
    (tmp_path / "go").touch()
    assert handle.wait(TIMEOUT) == 9
    assert not folder.exists()


def test_one_write_never_exceeds_the_cap(tmp_path: Path) -> None:
    log = supervisor.CappedLog(str(tmp_path / "a.log"), 64 * 1024)
    stream = supervisor.Stream(0, log, supervisor.Masker([], []))
    stream.feed(b"x" * 3_000_000 + b"\nlast line\n")
    log.close()
    sizes = [p.stat().st_size for p in tmp_path.glob("a.log*")]
    assert sum(sizes) <= 64 * 1024
    assert (tmp_path / "a.log").read_bytes().endswith(b"last line\n")


def test_a_log_that_cannot_rotate_starts_over_within_its_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = supervisor.CappedLog(str(tmp_path / "a.log"), 8192)

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(supervisor.os, "replace", refuse)
    for n in range(2000):
        log.write(f"line {n}\n".encode())
    log.close()
    assert (tmp_path / "a.log").stat().st_size <= 4096
    assert (tmp_path / "a.log").read_bytes().endswith(b"line 1999\n")


def test_a_private_key_block_is_masked_whole() -> None:
    lines = []

    class Log:
        limit = 1 << 20

        def write(self, data: bytes) -> None:
            lines.extend(data.splitlines())

    stream = supervisor.Stream(0, Log(), supervisor.Masker([], redaction_rules()))  # type: ignore[arg-type]
    stream.feed(
        b"before\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        b"QUJDREVGR0hJSktMTU5PUA==\n-----END OPENSSH PRIVATE KEY-----\nafter\n"
    )
    assert lines == [
        b"before",
        b"[REDACTED]",
        b"[REDACTED]",
        b"[REDACTED]",
        b"[REDACTED]",
        b"after",
    ]


def test_a_json_escaped_secret_is_masked() -> None:
    mask = supervisor.Masker(['pa"ss\\word-123'], [])
    line = json.dumps({"text": 'the value is pa"ss\\word-123'}).encode()
    assert b"word-123" not in mask(line)


def test_a_token_is_never_split_by_a_long_line_cut(tmp_path: Path) -> None:
    log = supervisor.CappedLog(str(tmp_path / "a.log"), 1 << 40)
    stream = supervisor.Stream(0, log, supervisor.Masker([], redaction_rules()))
    stream.long = 4096
    token = b"ghp_" + b"A" * 36
    stream.feed(b"x " * 2040 + token + b" z" * 50)  # the cut falls in the token
    stream.finish()
    log.close()
    assert b"AAAAAAAAAA" not in (tmp_path / "a.log").read_bytes()


def test_an_adopted_agent_that_left_a_child_behind_has_ended_and_its_child_is_stopped(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "open('child', 'w').write(str(child.pid))\n"
        "sys.exit(4)\n"
    )
    record = tmp_path / "r.json"
    handle = start(code, record_path=record)
    ticks = proc_start_ticks(handle.pid or 0)
    assert handle.wait(TIMEOUT) == 4
    child = int((tmp_path / "child").read_text())
    adopted = AdoptedHandle(handle.pid, ticks, tmp_path / "logs" / "agent.log", record)
    assert adopted.poll() == 4  # the agent ended; its child does not keep it "running"
    assert alive(child)
    adopted.kill()  # the teardown's
    assert until(lambda: not alive(child))


def test_the_agent_gets_one_sigterm_when_it_is_stopped(
    start: Callable[..., runner.ProcessHandle], tmp_path: Path
) -> None:
    """A second SIGTERM would cut short an agent that treats the first as 'wind down'."""
    code = (
        "import os, signal, sys, time\n"
        "def term(*a):\n"
        "    open('terms', 'a').write('T')\n"
        "signal.signal(signal.SIGTERM, term)\n"
        "open('ready', 'w').close()\n"
        "while not os.path.exists('terms'): time.sleep(0.01)\n"
        "time.sleep(0.3)  # winding down: a second signal would arrive in here\n"
    )
    handle = start(code)
    assert until((tmp_path / "ready").exists)
    handle.terminate()
    assert handle.wait(TIMEOUT) == 0
    assert (tmp_path / "terms").read_text() == "T"
