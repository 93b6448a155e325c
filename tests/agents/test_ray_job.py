"""What a Ray job runs on its node (``agents/ray_job.py``), run here as Ray would run it:
``python -S ray_job.py spec.json`` in a working directory holding the spawner's package (no
Ray needed), against a real bare origin reached by a ``file://`` URL."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest_chump.agents import ray_job
from pytest_chump.core import supervisor
from pytest_chump.core.redact import redaction_rules, secret_name_pattern
from tests.gitrepos import git, make_origin

AGENT = """\
import os, subprocess, sys
prompt = sys.stdin.read()
print("prompt:", prompt.strip(), flush=True)
print("ERROR: leaking", os.environ.get("LEAK", ""), file=sys.stderr, flush=True)
mode = os.environ.get("MODE", "commit")
with open(os.environ["CHUMP_GAP_ID"] + ".txt", "w") as fh:
    fh.write("work\\n")
if mode == "commit":
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "commit", "-q", "-m", "work"], check=True)
sys.exit(int(os.environ.get("EXIT", "0")))
"""


def package(tmp_path: Path, origin: Path, base: str, **spec: Any) -> Path:
    """The job's working directory as the spawner ships it."""
    work = tmp_path / "job"
    work.mkdir()
    shutil.copyfile(ray_job.__file__, work / "ray_job.py")
    shutil.copyfile(supervisor.__file__, work / "supervisor.py")
    (work / "agent.py").write_text(AGENT)
    (work / ray_job.PROMPT_NAME).write_text("do R-1\n")
    full = {
        "job_id": "chump-r-1-abc",
        "gap_id": "R-1",
        "branch": "chump/r-1",
        "base_sha": base,
        "remote_url": origin.as_uri(),
        "cache_dir": str(tmp_path / "cache"),
        "argv": [sys.executable, str(work / "agent.py")],
        "prompt": "do R-1",
        "env": {"CHUMP_GAP_ID": "R-1", "CHUMP_DISPATCH_DEPTH": "1"},
        "secrets": ["s3cret-value-1234"],
        "secret_name_pattern": secret_name_pattern(),
        "rules": [list(rule) for rule in redaction_rules()],
        "setup": {"timeout": 60},
        **spec,
    }
    full["env"] = {**full["env"], **spec.get("extra_env", {})}
    (work / "spec.json").write_text(json.dumps(full))
    return work


def run_job(work: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-S", "ray_job.py", "spec.json"],
        cwd=work,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def result(out: str) -> dict[str, Any]:
    (line,) = [ln for ln in out.splitlines() if f" {ray_job.RESULT_EVENT}: " in ln]
    body = line.split(f" {ray_job.RESULT_EVENT}: ", 1)[1].removesuffix(" ===")
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def test_the_job_works_on_the_branch_at_the_base_and_pushes_it(tmp_path: Path) -> None:
    origin, clone = make_origin(tmp_path)
    base = git(clone, "rev-parse", "HEAD")
    work = package(tmp_path, origin, base, extra_env={"LEAK": "s3cret-value-1234"})
    status, out = run_job(work)
    assert status == 0, out
    pushed = git(origin, "rev-parse", "refs/heads/chump/r-1")
    assert result(out) == {"exit": 0, "pushed": pushed, "error": ""}
    assert git(origin, "rev-parse", f"{pushed}~1") == base
    assert "R-1.txt" in git(origin, "ls-tree", "--name-only", pushed)
    assert "prompt: do R-1" in out
    assert "[stderr] ERROR: leaking [REDACTED]" in out  # masked before it left the node
    assert "s3cret-value-1234" not in out
    assert not any((tmp_path / "cache" / "worktrees").iterdir())  # the worktree is gone


def test_uncommitted_work_is_committed_and_pushed_never_lost(tmp_path: Path) -> None:
    origin, clone = make_origin(tmp_path)
    work = package(
        tmp_path, origin, git(clone, "rev-parse", "HEAD"), extra_env={"MODE": "leave", "EXIT": "3"}
    )
    status, out = run_job(work)
    assert status == 3, out  # the agent's status
    message = git(origin, "log", "-1", "--format=%s", "refs/heads/chump/r-1")
    assert message == "chump: save uncommitted work of R-1"


def test_a_later_attempt_goes_on_from_the_branch_on_the_remote(tmp_path: Path) -> None:
    origin, clone = make_origin(tmp_path)
    base = git(clone, "rev-parse", "HEAD")
    git(clone, "checkout", "-q", "-b", "chump/r-1")
    (clone / "earlier.txt").write_text("an earlier attempt\n")
    git(clone, "add", "earlier.txt")
    git(clone, "commit", "-q", "-m", "earlier attempt")
    git(clone, "push", "-q", "origin", "chump/r-1")
    earlier = git(clone, "rev-parse", "HEAD")
    status, out = run_job(package(tmp_path, origin, base))
    assert status == 0, out
    assert git(origin, "rev-parse", "refs/heads/chump/r-1~1") == earlier


def test_a_base_commit_the_remote_lacks_fails_with_one_line(tmp_path: Path) -> None:
    origin, clone = make_origin(tmp_path)
    (clone / "local.txt").write_text("never pushed\n")
    git(clone, "add", "local.txt")
    git(clone, "commit", "-q", "-m", "local only")
    status, out = run_job(package(tmp_path, origin, git(clone, "rev-parse", "HEAD")))
    assert status == 1
    assert "is not on" in result(out)["error"]
    assert "push it first" in result(out)["error"]
    assert "prompt:" not in out  # no agent ran


def test_a_failing_set_up_step_stops_before_the_agent(tmp_path: Path) -> None:
    origin, clone = make_origin(tmp_path)
    failing = [sys.executable, "-c", "import sys; print('no deps'); sys.exit(4)"]
    work = package(
        tmp_path,
        origin,
        git(clone, "rev-parse", "HEAD"),
        setup={"after_create": failing, "timeout": 60},
    )
    status, out = run_job(work)
    assert status == 1
    assert result(out)["error"] == "setup failed: after_create: exit status 4"
    assert "no deps" in out
    assert "prompt:" not in out


def test_an_agent_missing_on_the_node_is_status_127(tmp_path: Path) -> None:
    origin, clone = make_origin(tmp_path)
    work = package(
        tmp_path, origin, git(clone, "rev-parse", "HEAD"), argv=["no-such-agent-cli", "-p"]
    )
    status, out = run_job(work)
    assert status == 127
    assert "no-such-agent-cli: command not found on this node" in out


def test_a_branch_a_killed_job_left_unpushed_is_rescued_not_lost(tmp_path: Path) -> None:
    origin, clone = make_origin(tmp_path)
    base = git(clone, "rev-parse", "HEAD")
    status, out = run_job(package(tmp_path, origin, base, extra_env={"MODE": "leave"}))
    assert status == 0, out
    cache = next((tmp_path / "cache").glob("*.git"))
    # a later job was killed after committing, before pushing: its branch stays in the cache
    git(cache, "update-ref", "refs/heads/chump/r-1", base)
    tree = tmp_path / "killed"
    git(cache, "worktree", "add", "-q", str(tree), "chump/r-1")
    (tree / "unpushed.txt").write_text("work of a killed job\n")
    git(tree, "add", "unpushed.txt")
    git(tree, "commit", "-q", "-m", "unpushed work")
    unpushed = git(tree, "rev-parse", "HEAD")
    shutil.rmtree(tmp_path / "job")
    status, out = run_job(package(tmp_path, origin, base, extra_env={"MODE": "leave"}))
    assert status == 0, out
    assert git(cache, "rev-parse", f"refs/chump/rescued/chump/r-1-{unpushed[:12]}") == unpushed
    assert f"rescued: chump/r-1 at {unpushed}" in out
