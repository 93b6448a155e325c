"""The git hooks: ``chump-validate`` blocks bad pushes, ``chump-dispatch`` starts or nudges.

Runs the hooks' ``main`` in-process, the plain sh scripts through git, and real pre-commit
(``repo: local``; the ``language: python`` variant only with an offline wheelhouse) against
temporary repositories. Every orchestrator a test starts is stopped when the test ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from pytest_chump import cli
from pytest_chump.githooks import chump_dispatch, chump_validate
from pytest_chump.state.orchestrator_lock import running_pid
from pytest_chump.state.store import Store
from tests.conftest import ROOT
from tests.gitrepos import git, make_origin

AGENT = ROOT / "tests" / "agent_scripts" / "ship.py"
VENV_BIN = Path(sys.executable).parent
SCRIPTS = ROOT / "pytest_chump" / "githooks" / "scripts"
BAD = "gaps:\n  - {id: BAD-1, priority: P9, effort: s}\n"
BAD_LINE = "docs/gaps.yaml:2: gaps[0].priority: unknown priority 'P9'"
ONE_GAP = "gaps:\n  - {id: HOOK-1, title: hooked, priority: P1, effort: s}\n"
HOOKS, HOOK_IDS = [chump_validate.main, chump_dispatch.main], ["validate", "dispatch"]
PYPROJECT = f"""\
[tool.chump]
spawner = "script"
pr_provider = "git"
poll_interval = "50ms"
exit_grace = "20s"
kill_grace = "1s"

[tool.chump.spawners.script]
command = ["{sys.executable}", "{AGENT}"]
"""


# --- helpers -----------------------------------------------------------------------------


def wait_until(ready: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    pause, deadline = threading.Event(), time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what or ready}"
        pause.wait(0.05)


def alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as gone (and is reaped when it is ours)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    if state != "Z":
        return True
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return False


def started_pid(text: str) -> int:
    match = re.search(r"chump: started an orchestrator \(pid (\d+)\)", text)
    assert match, text
    return int(match[1])


def log_of(repo: Path) -> str:
    path = repo / ".chump/logs/orchestrator.log"
    return path.read_text() if path.exists() else ""


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)


def stop(pid: int) -> None:
    """SIGTERM the orchestrator's process group (it stops its agents), SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if not alive(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not alive(pid), grace)


@pytest.fixture
def orchestrators() -> Iterator[list[int]]:
    """Pids of orchestrators a test started; any still running at the end is stopped."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        stop(pid)


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Agents wait until this file exists (tests/agent_scripts/ship.py, AGENT_MODE=gate)."""
    path = tmp_path / "go"
    monkeypatch.setenv("AGENT_MODE", "gate")
    monkeypatch.setenv("AGENT_GATE", str(path))
    return path


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clone (cwd) of a bare origin, configured for the script agent and the git provider."""
    _, clone = make_origin(tmp_path)
    (clone / "pyproject.toml").write_text(PYPROJECT)
    commit_all(clone, "configure chump")
    git(clone, "push", "--quiet", "origin", "main")
    monkeypatch.chdir(clone)
    return clone


def cpu_seconds() -> float:
    """CPU time of this process and of the children it waited for: what a hook costs, which
    a busy machine (tests running in parallel) does not change, unlike the wall clock. An
    orchestrator a hook detached is nobody's waited-for child: it is not counted."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn: Callable[[list[str]], int], *args: str) -> tuple[int, float]:
    """``fn(args)`` and the CPU seconds it cost (``cpu_seconds``)."""
    t0 = cpu_seconds()
    code = fn(list(args))
    return code, cpu_seconds() - t0


def pulled(
    cwd: Path, env: dict[str, str], *argv: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``run(cwd, env, *argv)`` and the CPU seconds it cost: git, pre-commit and the hook."""
    t0 = cpu_seconds()
    proc = run(cwd, env, *argv)
    return proc, cpu_seconds() - t0


# --- chump-validate ----------------------------------------------------------------------


def test_validate_accepts_a_good_backlog_and_ignores_file_names(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "docs/gaps.yaml").write_text(ONE_GAP)
    assert chump_validate.main(["README", "docs/gaps.yaml"]) == 0
    assert "docs/gaps.yaml: ok (1 gaps)" in capsys.readouterr().out


def test_validate_rejects_a_bad_backlog_with_the_validator_lines(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "docs/gaps.yaml").write_text(BAD)
    assert chump_validate.main([]) == 2
    assert capsys.readouterr().err.startswith(BAD_LINE)  # path:line: field: message, bare


def test_validate_takes_backlog_and_repo_root(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "other.yaml").write_text(BAD)
    monkeypatch.chdir(tmp_path)
    args = ["--repo-root", str(repo), "--backlog", "other.yaml"]
    assert chump_validate.main(args) == 2
    assert "other.yaml:2: gaps[0].priority" in capsys.readouterr().err


@pytest.mark.parametrize("hook", HOOKS, ids=HOOK_IDS)
def test_hooks_strip_git_hook_variables(
    hook: Callable[[list[str]], int],
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    orchestrators: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A hook that obeyed git's variables would act on ``elsewhere``, not on ``repo``."""
    elsewhere = tmp_path / "elsewhere"
    git(tmp_path, "init", "--quiet", str(elsewhere))
    monkeypatch.setenv("GIT_DIR", str(elsewhere / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(elsewhere))
    monkeypatch.setenv("GIT_INDEX_FILE", "/nonexistent/index")
    monkeypatch.chdir(repo / "docs")
    assert hook([]) == 0
    assert "GIT_DIR" not in os.environ
    out = capsys.readouterr().out
    if hook is chump_dispatch.main:  # nothing to dispatch: it starts, finds nothing, exits
        orchestrators.append(pid := started_pid(out))
        wait_until(lambda: not alive(pid), what="the idle orchestrator to exit")
        assert "shipped=0" in log_of(repo)
    else:
        assert "gaps.yaml: ok (0 gaps)" in out
    assert not (elsewhere / ".chump").exists()


@pytest.mark.parametrize("hook", HOOKS, ids=HOOK_IDS)
@pytest.mark.parametrize(
    ("switch", "reason"),
    [("env", "CHUMP_DISABLE=1"), ("pyproject", "setting hooks = false")],
)
def test_kill_switch_makes_hooks_do_nothing(
    hook: Callable[[list[str]], int],
    switch: str,
    reason: str,
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (repo / "docs/gaps.yaml").write_text(BAD)
    if switch == "env":
        monkeypatch.setenv("CHUMP_DISABLE", "1")
    else:
        (repo / "pyproject.toml").write_text(
            PYPROJECT.replace("[tool.chump]\n", "[tool.chump]\nhooks = false\n")
        )
    assert hook([]) == 0
    assert capsys.readouterr().out == f"chump: hooks are disabled ({reason})\n"
    assert not (repo / ".chump").exists()


@pytest.mark.parametrize("hook", HOOKS, ids=HOOK_IDS)
def test_hooks_do_nothing_inside_an_agent(
    hook: Callable[[list[str]], int],
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (repo / "docs/gaps.yaml").write_text(BAD)
    monkeypatch.setenv("CHUMP_DISPATCH_DEPTH", "1")
    assert hook(["1"]) == 0
    assert capsys.readouterr() == ("", "")
    assert not (repo / ".chump").exists()


def test_dispatch_reports_a_bad_configuration_in_one_line(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "pyproject.toml").write_text("[tool.chump]\nhooks = 'maybe'\n")
    assert chump_dispatch.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "[tool.chump] hooks: expected true or false, got 'maybe'" in err


# --- chump-dispatch: detached orchestrator -----------------------------------------------


def test_dispatch_starts_a_detached_orchestrator_then_nudges_it(
    repo: Path, gate: Path, orchestrators: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "docs/gaps.yaml").write_text(ONE_GAP)
    code, spent = timed(chump_dispatch.main)
    out = capsys.readouterr().out
    assert code == 0
    assert spent < 1.0, f"chump-dispatch took {spent:.3f}s of CPU"
    orchestrators.append(pid := started_pid(out))
    assert alive(pid)  # it returned without waiting for the orchestrator (its agent waits)
    assert out.endswith("; log: .chump/logs/orchestrator.log\n"), out
    wait_until(lambda: "DISPATCHED: HOOK-1" in log_of(repo), what="HOOK-1 dispatched")
    assert running_pid(repo / ".chump") == pid

    with (repo / "docs/gaps.yaml").open("a") as fh:
        fh.write("  - {id: HOOK-2, title: after the merge, priority: P1, effort: s}\n")
    code, spent = timed(chump_dispatch.main, "1")  # as git passes a squash merge
    out = capsys.readouterr().out
    assert (code, spent < 1.0) == (0, True), spent
    assert out == (
        f"chump: nudged the running orchestrator (pid {pid}) to re-read the backlog"
        " (squash merge)\n"
    )
    wait_until(lambda: "DISPATCHED: HOOK-2" in log_of(repo), what="HOOK-2 dispatched")

    gate.write_text("go")
    wait_until(lambda: not alive(pid), what="the orchestrator to exit")
    assert "shipped=2" in log_of(repo), log_of(repo)
    assert running_pid(repo / ".chump") is None
    with Store.for_repo(repo) as store:
        rows = store.dispatches()
    assert sorted((r.gap_id, r.outcome) for r in rows) == [
        ("HOOK-1", "shipped"),
        ("HOOK-2", "shipped"),
    ]


def test_squash_flag_from_pre_commit_is_reported(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    orchestrators: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PRE_COMMIT_IS_SQUASH_MERGE", "1")
    assert chump_dispatch.main([]) == 0
    out = capsys.readouterr().out
    orchestrators.append(pid := started_pid(out))
    assert out.endswith(" (squash merge)\n")
    wait_until(lambda: not alive(pid), what="the idle orchestrator to exit")
    assert "chump-dispatch after a squash merge" in log_of(repo)


# --- chump install-hooks and the plain scripts -------------------------------------------


def install(repo: Path, *flags: str) -> int:
    return cli.main(["install-hooks", "--repo-root", str(repo), *flags])


def test_install_hooks_installs_and_is_idempotent(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert install(repo) == 0
    hooks = repo / ".git" / "hooks"
    for name in ("pre-push", "post-merge"):
        assert (hooks / name).read_bytes() == (SCRIPTS / name).read_bytes()
        assert os.access(hooks / name, os.X_OK)
    assert capsys.readouterr().out.count("installed ") == 2
    assert install(repo) == 0
    assert capsys.readouterr().out.count("already installed ") == 2


def test_install_hooks_keeps_a_users_hook_unless_forced(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = repo / ".git" / "hooks" / "pre-push"
    mine.write_text("#!/bin/sh\necho mine\n")
    assert install(repo) == 2
    out, err = capsys.readouterr()
    assert err == f"kept existing {mine} (use --force to replace it)\n"
    assert "installed " in out  # post-merge was still installed
    assert mine.read_text() == "#!/bin/sh\necho mine\n"
    assert install(repo, "--force") == 0
    assert f"replaced {mine}" in capsys.readouterr().out
    assert mine.read_bytes() == (SCRIPTS / "pre-push").read_bytes()


def test_install_hooks_respects_core_hooks_path(repo: Path) -> None:
    git(repo, "config", "core.hooksPath", "githooks-dir")
    assert install(repo) == 0
    assert (repo / "githooks-dir" / "post-merge").is_file()
    assert not (repo / ".git" / "hooks" / "post-merge").exists()


def test_plain_pre_push_refuses_a_bad_backlog_even_without_console_scripts(
    repo: Path, tmp_path: Path
) -> None:
    """Only ``python3`` on PATH (no chump-validate): the script falls back to ``-m``."""
    install(repo)
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (shim / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:/usr/bin:/bin"}
    (repo / "docs/gaps.yaml").write_text(BAD)
    commit_all(repo, "break the backlog")
    push = subprocess.run(
        ["git", "push", "origin", "main"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert push.returncode != 0
    assert BAD_LINE in push.stderr
    inside = subprocess.run(
        ["git", "push", "origin", "main"],
        cwd=repo,
        env={**env, "CHUMP_DISPATCH_DEPTH": "1"},
        capture_output=True,
        text=True,
    )
    assert inside.returncode == 0, inside.stderr  # inside an agent the hook does nothing


def test_top_level_hooks_are_the_packaged_scripts() -> None:
    for name in ("pre-push", "post-merge"):
        link = ROOT / "hooks" / name
        assert link.is_symlink()
        assert link.resolve() == (SCRIPTS / name).resolve()
        assert os.access(SCRIPTS / name, os.X_OK)


# --- real pre-commit ---------------------------------------------------------------------

PRE_COMMIT = VENV_BIN / "pre-commit"
WHEELHOUSE = os.environ.get("CHUMP_TEST_WHEELHOUSE", "")  # read before conftest drops CHUMP_*


def readme_local_config() -> str:
    """The ``repo: local`` configuration shown in the README, for this pre-commit version."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
    (block,) = (b for b in blocks if "repo: local" in b)
    major, minor = (int(part) for part in metadata.version("pre-commit").split(".")[:2])
    return block if (major, minor) >= (4, 4) else block.replace("unsupported", "system")


def hook_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PRE_COMMIT_COLOR": "never",
        **extra,
    }


def run(cwd: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def pre_commit_round_trip(
    tmp_path: Path, config: str, env: dict[str, str], orchestrators: list[int], gate: Path
) -> Path:
    """Bad push refused, good push accepted, and a pull elsewhere dispatches the new gap.

    Returns the clone that pulled (its ``.chump/logs`` holds the orchestrator's log).
    """
    origin, work = make_origin(tmp_path)
    (work / "pyproject.toml").write_text(PYPROJECT)
    (work / ".pre-commit-config.yaml").write_text(config)
    commit_all(work, "configure chump and pre-commit")
    git(work, "push", "--quiet", "origin", "main")
    second = tmp_path / "second"
    git(tmp_path, "clone", "--quiet", str(origin), str(second))
    for clone in (work, second):
        hooks = ("--hook-type", "pre-push", "--hook-type", "post-merge")
        assert run(clone, env, str(PRE_COMMIT), "install", *hooks).returncode == 0

    (work / "docs/gaps.yaml").write_text(BAD)
    commit_all(work, "break the backlog")
    push = run(work, env, "git", "push", "origin", "main")
    assert push.returncode != 0
    assert BAD_LINE in push.stdout + push.stderr, push.stdout + push.stderr
    (work / "docs/gaps.yaml").write_text(ONE_GAP)
    commit_all(work, "one gap")
    push = run(work, env, "git", "push", "origin", "main")
    assert push.returncode == 0, push.stdout + push.stderr

    pull, spent = pulled(second, env, "git", "pull", "--ff-only", "origin", "main")
    assert pull.returncode == 0, pull.stdout + pull.stderr
    orchestrators.append(pid := started_pid(pull.stdout + pull.stderr))
    assert alive(pid)  # git did not wait for the orchestrator (its agent waits at the gate)
    assert spent < 5.0, f"git pull with the post-merge hook took {spent:.2f}s of CPU"
    wait_until(lambda: "DISPATCHED: HOOK-1" in log_of(second), what="HOOK-1 dispatched")
    gate.write_text("go")
    wait_until(lambda: not alive(pid), what="the orchestrator to exit")
    with Store.for_repo(second) as store:
        assert [(r.gap_id, r.outcome) for r in store.dispatches()] == [("HOOK-1", "shipped")]
    return second


def test_pre_commit_local_hooks_block_bad_pushes_and_dispatch_after_pull(
    tmp_path: Path, gate: Path, orchestrators: list[int]
) -> None:
    assert (VENV_BIN / "chump-dispatch").exists(), "reinstall: pip install -e ."
    env = hook_env(tmp_path)
    pre_commit_round_trip(tmp_path, readme_local_config(), env, orchestrators, gate)


def snapshot(tmp_path: Path) -> tuple[Path, str]:
    """This checkout's working tree (tracked and new files) committed in a fresh repo."""
    target = tmp_path / "pytest-chump"
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.exists() or source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name, follow_symlinks=False)
    git(tmp_path, "init", "--quiet", "-b", "main", str(target))
    commit_all(target, "snapshot")
    return target, git(target, "rev-parse", "HEAD")


def test_pre_commit_python_hooks_from_this_repository(
    tmp_path: Path, gate: Path, orchestrators: list[int]
) -> None:
    wheelhouse = WHEELHOUSE
    if not wheelhouse or not Path(wheelhouse).is_dir():
        pytest.skip(
            "needs CHUMP_TEST_WHEELHOUSE=<dir of wheels of this package's dependencies and "
            "build requirements> so pre-commit can build its hook virtualenv offline"
        )
    source, rev = snapshot(tmp_path)
    config = yaml.safe_dump(
        {
            "repos": [
                {
                    "repo": str(source),
                    "rev": rev,
                    "hooks": [{"id": "chump-validate"}, {"id": "chump-dispatch"}],
                }
            ]
        }
    )
    env = hook_env(tmp_path, PIP_NO_INDEX="1", PIP_FIND_LINKS=wheelhouse)
    env["PATH"] = os.environ["PATH"]  # the hooks must come from pre-commit's own virtualenv
    second = pre_commit_round_trip(tmp_path, config, env, orchestrators, gate)
    header = log_of(second).splitlines()[0]
    assert f" {env['PRE_COMMIT_HOME']}/" in header, header  # run by the hook's own python


# --- packaging and naming ----------------------------------------------------------------


def test_each_hook_id_is_a_console_script_and_a_module() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    readme = (ROOT / "README.md").read_text()
    assert {h["id"] for h in hooks} == {"chump-validate", "chump-dispatch"}
    for hook in hooks:
        module = hook["id"].replace("-", "_")
        assert hook["entry"] == hook["id"]
        assert scripts[hook["id"]] == f"pytest_chump.githooks.{module}:main"
        assert (ROOT / "pytest_chump" / "githooks" / f"{module}.py").is_file()
        assert f"`{hook['id']}`" in readme
        assert hook["pass_filenames"] is False
        assert hook["always_run"] is True


def test_wheel_ships_the_plain_scripts_and_console_scripts(built_wheel: Path) -> None:
    with zipfile.ZipFile(built_wheel) as zf:
        names = set(zf.namelist())
        (ep,) = (n for n in names if n.endswith("entry_points.txt"))
        entry_points = zf.read(ep).decode()
    for name in ("pre-push", "post-merge"):
        assert f"pytest_chump/githooks/scripts/{name}" in names
    assert "chump-dispatch = pytest_chump.githooks.chump_dispatch:main" in entry_points
    assert "chump-validate = pytest_chump.githooks.chump_validate:main" in entry_points


def test_plain_post_merge_starts_a_detached_orchestrator_on_a_real_pull(
    repo: Path, tmp_path: Path, gate: Path, orchestrators: list[int]
) -> None:
    """``chump install-hooks`` then ``git pull``: the hook starts chump and git does not wait."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    installed = run(repo, env, str(VENV_BIN / "chump"), "install-hooks", "--repo-root", str(repo))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (repo / ".git/hooks/post-merge").read_bytes() == (SCRIPTS / "post-merge").read_bytes()
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(tmp_path / "origin.git"), str(other))
    (other / "docs/gaps.yaml").write_text(ONE_GAP)
    commit_all(other, "one gap")
    git(other, "push", "--quiet", "origin", "main")
    (repo / "LOCAL").write_text("a local commit: the pull makes a real merge\n")
    commit_all(repo, "local work")
    assert not (repo / ".chump").exists()

    pull, spent = pulled(repo, env, "git", "pull", "--no-rebase", "--no-edit", "origin", "main")
    assert pull.returncode == 0, pull.stdout + pull.stderr
    orchestrators.append(pid := started_pid(pull.stdout + pull.stderr))
    assert alive(pid)  # git did not wait for the orchestrator (its agent waits at the gate)
    assert spent < 5.0, f"git pull with the plain post-merge hook took {spent:.2f}s of CPU"
    assert (repo / "docs/gaps.yaml").read_text() == ONE_GAP  # the pull merged the new commit
    assert len(git(repo, "rev-list", "--parents", "-n", "1", "HEAD").split()) == 3  # a merge
    assert os.getsid(pid) == pid != os.getsid(0)  # detached: its own session, not ours
    wait_until(lambda: running_pid(repo / ".chump") == pid, what="the orchestrator's pid file")
    wait_until(lambda: "DISPATCHED: HOOK-1" in log_of(repo), what="HOOK-1 dispatched")
    assert alive(pid)
    stop(pid)
    assert not alive(pid)


def test_pre_commit_hooks_manifest_stages_and_flags() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"chump-validate", "chump-dispatch"}
    validate, dispatch = hooks["chump-validate"], hooks["chump-dispatch"]
    assert validate["stages"] == ["pre-commit", "pre-push"]
    assert validate["pass_filenames"] is False
    assert validate["always_run"] is True
    assert dispatch["stages"] == ["post-merge"]
    assert dispatch["always_run"] is True
    assert dispatch["pass_filenames"] is False


def test_pre_push_judges_the_pushed_commit_not_the_work_tree(repo: Path, tmp_path: Path) -> None:
    """A bad backlog committed but fixed in the work tree is refused; a good one committed
    while the work tree is broken goes through."""
    install(repo)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    good = (repo / "docs/gaps.yaml").read_text()

    def push() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "push", "origin", "main"], cwd=repo, env=env, capture_output=True, text=True
        )

    (repo / "docs/gaps.yaml").write_text(BAD)
    commit_all(repo, "break the backlog")
    (repo / "docs/gaps.yaml").write_text(good)  # fixed, but not committed
    refused = push()
    assert refused.returncode != 0
    assert BAD_LINE in refused.stderr
    git(repo, "commit", "--quiet", "-am", "fix the backlog")
    (repo / "docs/gaps.yaml").write_text(BAD)  # broken again, not committed
    accepted = push()
    assert accepted.returncode == 0, accepted.stderr


def test_pre_push_tolerates_a_legacy_backlog_but_refuses_a_new_problem(repo: Path) -> None:
    """The remote already has problems: pushing other work goes through; adding one does not,
    on an existing branch and on a new one (judged against the base ref)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    legacy = "gaps:\n  - {id: OLD-1, status: shipped}\n  - {id: OK-1, priority: P1}\n"
    (repo / "docs/gaps.yaml").write_text(legacy)
    commit_all(repo, "legacy backlog")
    git(repo, "push", "--quiet", "origin", "main")  # no hook yet: the remote has the problem
    install(repo)

    def push(*ref: str) -> subprocess.CompletedProcess[str]:
        argv = ["git", "push", "origin", *(ref or ("main",))]
        return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True)

    (repo / "notes.txt").write_text("unrelated work\n")
    commit_all(repo, "other work")
    accepted = push()
    assert accepted.returncode == 0, accepted.stderr
    assert "1 problems already at" in accepted.stdout + accepted.stderr
    (repo / "docs/gaps.yaml").write_text(legacy + "  - {id: NEW-1, priority: P9}\n")
    commit_all(repo, "a new problem")
    refused = push()
    assert refused.returncode != 0
    assert "gaps[2].priority: unknown priority 'P9'" in refused.stderr
    assert "OLD-1" not in refused.stderr
    assert "status" not in refused.stderr
    refused = push("main:refs/heads/feature")  # a new branch: judged against origin/main
    assert refused.returncode != 0
    assert "unknown priority 'P9'" in refused.stderr


def test_pre_commit_stage_refuses_only_what_the_commit_adds(repo: Path) -> None:
    (repo / "pyproject.toml").write_text(
        PYPROJECT + "\n[tool.chump.status_aliases]\nshipped = 'done'\n"
    )
    (repo / "docs/gaps.yaml").write_text(
        "gaps:\n  - {id: OLD-1, status: shipped}\n  - {id: OLD-2, depends_on: [GONE]}\n"
    )
    commit_all(repo, "legacy, with an alias the hook must honour")
    assert chump_validate.main(["--repo-root", str(repo)]) == 0  # only the legacy problem
    with open(repo / "docs/gaps.yaml", "a") as fh:
        fh.write("  - {id: NEW-1, priority: P9}\n")
    assert chump_validate.main(["--repo-root", str(repo)]) == 2
