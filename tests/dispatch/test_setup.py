"""Worktree set-up through the real loop: includes copied, commands around the agent, a failing
set-up undone and recorded as ``setup-failed``, bad configuration refused before dispatch."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from pytest_chump.core.errors import UsageError
from pytest_chump.dispatch.setup import WorktreeSetup
from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.state.store import Store
from tests.gitrepos import AGENT, git, make_origin
from tests.waiting import until

STEP = (  # appends "<step> <gap> <cwd name>" to $SETUP_TRACE; exits $SETUP_FAIL_<STEP> or 0
    "import os, sys; s = sys.argv[1]; "
    "open(os.environ['SETUP_TRACE'], 'a').write(f\"{s} {os.environ['CHUMP_GAP_ID']} "
    '{os.path.basename(os.getcwd())}\\n"); '
    "print('setup says', s, 'token=ghp_' + 'x' * 36); "
    "sys.exit(int(os.environ.get('SETUP_FAIL_' + s.upper(), '0')))"
)


def steps_table(*names: str) -> str:
    lines = [f'{n} = ["{sys.executable}", "-c", "{escape(STEP)}", "{n}"]' for n in names]
    return "\n".join(lines)


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _, clone = make_origin(tmp_path)
    (clone / ".gitignore").write_text(".env\nsecrets/\n")
    (clone / "docs/gaps.yaml").write_text(
        "gaps:\n  - {id: SET-1, priority: P1, effort: s}\n"
        "  - {id: SET-2, priority: P1, effort: s}\n"
    )
    (clone / "pyproject.toml").write_text(
        f"""[tool.chump]
spawner = "script"
pr_provider = "git"
max_parallel = 1
poll_interval = "50ms"
exit_grace = "20s"
worktree_include = [".env", "secrets/*.json", "linked.env"]

[tool.chump.spawners.script]
command = ["{sys.executable}", "{AGENT}"]

[tool.chump.worktree]
{steps_table("after_create", "before_run", "after_run", "before_remove")}
timeout = "30s"
"""
    )
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "configure")
    git(clone, "push", "-q", "origin", "main")
    git(clone, "fetch", "-q", "origin")
    (clone / ".env").write_text("API=local\n")  # untracked, ignored
    (clone / "secrets").mkdir()
    (clone / "secrets/dev.json").write_text("{}\n")
    (tmp_path / "outside.env").write_text("NOT=mine\n")
    (clone / "linked.env").symlink_to(tmp_path / "outside.env")
    monkeypatch.setenv("SETUP_TRACE", str(tmp_path / "trace"))
    return clone


def orchestrate(repo: Path) -> tuple[Orchestrator, str]:
    app = App.create({"repo_root": str(repo)})
    out = io.StringIO()
    with Store.for_repo(repo) as store:
        orch = Orchestrator(app, store, app.spawner_factory(), app.provider(), Progress(out, out))
        orch.run()
    return orch, out.getvalue()


def test_includes_and_commands_run_around_each_agent(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, list[str]] = {}
    real = WorktreeSetup.copy_includes

    def spy(self: WorktreeSetup, worktree: Path) -> list[Path]:
        copied = real(self, worktree)
        seen[worktree.name] = sorted(str(p) for p in copied)
        assert (worktree / ".env").read_text() == "API=local\n"
        return copied

    monkeypatch.setattr(WorktreeSetup, "copy_includes", spy)
    orch, out = orchestrate(repo)
    assert orch.finisher.counts["shipped"] == 2, out
    assert seen == {"set-1": [".env", "secrets/dev.json"], "set-2": [".env", "secrets/dev.json"]}
    trace = (tmp_path / "trace").read_text().splitlines()
    for gap in ("SET-1", "SET-2"):  # the next agent may start before the last one's teardown
        assert [line for line in trace if f" {gap} " in line] == [
            f"{step} {gap} {gap.lower()}"
            for step in ("after_create", "before_run", "after_run", "before_remove")
        ]


def test_a_failing_before_run_fails_the_dispatch_and_undoes_it(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SETUP_FAIL_BEFORE_RUN", "2")
    orch, out = orchestrate(repo)
    assert orch.finisher.counts["spawn_failures"] == 2
    assert "DISPATCH-FAILED: SET-1: before_run failed: exit status 2: setup says before_run" in out
    assert "ghp_" not in out  # the command's output is redacted
    assert git(repo, "branch", "--list", "chump/*") == ""  # branches and worktrees undone
    assert not (repo / ".chump/worktrees/set-1").exists()
    with Store.for_repo(repo) as store:
        rows = store.dispatches()
        assert [(r.gap_id, r.outcome, r.cause) for r in rows] == [
            ("SET-1", "killed", "setup-failed"),
            ("SET-2", "killed", "setup-failed"),
        ]
        assert store.live_leases() == {}
        assert all("cause:setup-failed" in r["notes"] for r in store.reflections())


def test_teardown_steps_only_warn(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETUP_FAIL_BEFORE_REMOVE", "1")
    orch, out = orchestrate(repo)
    assert orch.finisher.counts["shipped"] == 2, out
    assert "warning: SET-1: before_remove failed (ignored): exit status 1" in out
    assert not (repo / ".chump/worktrees/set-1").exists()


def test_a_step_that_hangs_is_stopped_with_its_children(tmp_path: Path) -> None:
    hang = [
        sys.executable,
        "-c",
        "import subprocess, time; subprocess.Popen(['sleep', '300']); "
        "print('hanging', flush=True); time.sleep(300)",
    ]
    setup = WorktreeSetup(tmp_path, {"before_run": tuple(hang)}, timeout=0.5)
    log = tmp_path / "setup.log"
    with pytest.raises(Exception, match=r"before_run failed: timed out after 0.5s: hanging"):
        setup.run("before_run", tmp_path, dict(os.environ), log, required=True)


@pytest.mark.parametrize(
    ("table", "include", "message"),
    [
        ({"after_creat": ["x"]}, (), r"\[tool.chump.worktree\] after_creat: unknown key"),
        ({"before_run": "make"}, (), r"before_run: expected a list of strings, got 'make'"),
        ({"timeout": "0s"}, (), r"timeout: must be more than 0"),
        ({}, ("../.env",), r"worktree_include: '../.env' must stay inside the repository"),
        ({}, ("/etc/passwd",), r"worktree_include: '/etc/passwd' must stay inside"),
    ],
)
def test_bad_set_up_is_one_line_before_anything_is_dispatched(
    tmp_path: Path, table: dict[str, object], include: tuple[str, ...], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        WorktreeSetup.from_settings(tmp_path, table, include)


def test_only_git_ignored_files_are_copied(tmp_path: Path) -> None:
    _, clone = make_origin(tmp_path)
    (clone / ".gitignore").write_text(".env\n")
    (clone / ".env").write_text("SECRET=1\n")
    (clone / "local.json").write_text('{"api_key": "x"}\n')  # untracked, NOT ignored
    worktree = tmp_path / "wt"
    worktree.mkdir()
    setup = WorktreeSetup.from_settings(clone, {}, [".env", "local.json"])
    assert [str(p) for p in setup.copy_includes(worktree)] == [".env"]
    assert not (worktree / "local.json").exists()


def test_includes_replace_a_pooled_worktree_s_old_copies_never_through_a_link(
    tmp_path: Path,
) -> None:
    """A worktree taken from the pool still has the copies of an earlier dispatch, and maybe
    links an earlier agent left: the copies are replaced, nothing is written through a link."""
    _, clone = make_origin(tmp_path)
    (clone / ".gitignore").write_text(".env\nconf/\n")
    (clone / ".env").write_text("API=new\n")
    (clone / "conf").mkdir()
    (clone / "conf/app.json").write_text("{}\n")
    worktree, elsewhere = tmp_path / "wt", tmp_path / "elsewhere"
    worktree.mkdir()
    elsewhere.mkdir()
    (worktree / ".env").symlink_to(elsewhere / "victim")
    (worktree / "conf").symlink_to(elsewhere)
    setup = WorktreeSetup.from_settings(clone, {}, [".env", "conf/*.json"])
    assert [str(p) for p in setup.copy_includes(worktree)] == [".env"]
    assert (worktree / ".env").read_text() == "API=new\n"
    assert not (worktree / ".env").is_symlink()
    assert list(elsewhere.iterdir()) == []  # nothing written through either link
    (worktree / ".env").write_text("API=old\n")  # an earlier dispatch's copy
    setup.copy_includes(worktree)
    assert (worktree / ".env").read_text() == "API=new\n"


def test_set_up_output_is_masked_and_capped_in_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVICE_API_KEY", "svc-key-0123456789abcdef")
    code = (
        "import os\n"
        "print('key', os.environ['SERVICE_API_KEY'])\n"
        "print('gh', 'ghp_' + 'q' * 36)\n"
        "for n in range(50000): print(f'noise {n:05d}', 'x' * 40)\n"
        "print('the last words')\n"
    )
    setup = WorktreeSetup(
        tmp_path, {"before_run": (sys.executable, "-c", code)}, max_bytes=64 * 1024
    )
    log = tmp_path / "logs" / "gap.setup.log"
    setup.run("before_run", tmp_path, dict(os.environ), log, required=True)
    rotated = log.with_name(log.name + ".1")
    text = log.read_text() + rotated.read_text()
    assert "svc-key-0123456789abcdef" not in text
    assert "ghp_qqqq" not in text
    assert log.stat().st_size + rotated.stat().st_size <= 64 * 1024  # within its cap
    assert log.read_text().rstrip().endswith("the last words")  # the newest output kept


def test_a_service_a_step_leaves_running_keeps_running(tmp_path: Path) -> None:
    """Its output keeps going to the (capped) log; the pipe is never closed under it."""
    ticks, service = tmp_path / "ticks", tmp_path / "service.py"
    service.write_text(
        "import time\n"
        "for n in range(100):\n"
        "    print(n, flush=True)\n"
        f"    open({str(ticks)!r}, 'a').write('x')\n"
        "    time.sleep(0.02)\n"
    )
    code = f"import subprocess, sys; subprocess.Popen([sys.executable, {str(service)!r}])"
    setup = WorktreeSetup(tmp_path, {"before_run": (sys.executable, "-c", code)})
    log = tmp_path / "logs" / "gap.setup.log"
    setup.run("before_run", tmp_path, dict(os.environ), log, required=True)
    # the service ends on its own after 100 ticks (~2 s)
    assert until(lambda: ticks.exists() and len(ticks.read_text()) >= 100)
    assert len(ticks.read_text()) == 100  # it was not killed by a closed pipe
    assert until(lambda: "99" in log.read_text().split())


def test_a_private_key_printed_by_a_step_is_masked_whole(tmp_path: Path) -> None:
    key = "\\n".join(
        [
            "-----BEGIN RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEAsecretbody",
            "-----END RSA PRIVATE KEY-----",
        ]
    )
    code = f"print({key!r}.replace(chr(92) + 'n', chr(10)))"
    setup = WorktreeSetup(tmp_path, {"before_run": (sys.executable, "-c", code)})
    log = tmp_path / "logs" / "gap.setup.log"
    setup.run("before_run", tmp_path, dict(os.environ), log, required=True)
    assert "secretbody" not in log.read_text()
