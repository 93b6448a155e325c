"""The ``ray`` spawner's configuration, its job package and its errors, without a cluster
(tests/agents/test_ray_cluster.py runs it against a real one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_chump.agents import ray_job
from pytest_chump.agents.ray_spawner import INSTALL_HINT, RaySpawner
from pytest_chump.core.errors import UsageError
from pytest_chump.core.model import Gap
from pytest_chump.core.protocols import SpawnRequest
from pytest_chump.loop.app import App
from tests.gitrepos import git, make_origin
from tests.ray_cluster import available, free_port


def settings_for(repo: Path, table: str) -> App:
    (repo / "pyproject.toml").write_text(
        f'[tool.chump]\nspawner = "ray"\npr_provider = "git"\n\n{table}\n'
    )
    return App.create({"repo_root": str(repo)})


def spawner(
    repo: Path, table: str = "[tool.chump.spawners.ray]\naddress = 'http://x'"
) -> RaySpawner:
    return RaySpawner(settings_for(repo, table).settings)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_origin(tmp_path)[1]


def test_an_unknown_option_names_the_table_and_key(repo: Path) -> None:
    with pytest.raises(UsageError, match=r"\[tool.chump.spawners.ray\] adress: unknown option"):
        spawner(repo, "[tool.chump.spawners.ray]\nadress = 'http://x'")


def test_an_unknown_agent_lists_the_valid_ones(repo: Path) -> None:
    with pytest.raises(UsageError, match=r"agent: unknown agent 'cladue' \(valid: claude, codex"):
        spawner(repo, "[tool.chump.spawners.ray]\naddress = 'http://x'\nagent = 'cladue'")


def test_the_merge_gate_is_refused(repo: Path) -> None:
    table = '[tool.chump.spawners.ray]\naddress = "http://x"\n'
    (repo / "pyproject.toml").write_text(
        f'[tool.chump]\nspawner = "ray"\n\n[tool.chump.merge_gate]\ncommand = ["true"]\n\n{table}'
    )
    with pytest.raises(UsageError, match="merge gate"):
        RaySpawner(App.create({"repo_root": str(repo)}).settings)


def test_no_address_is_one_line_naming_the_setting(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    made = spawner(repo, "[tool.chump.spawners.ray]\nagent = 'codex'")
    with pytest.raises(UsageError, match=r"address: not set \(nor RAY_ADDRESS\)"):
        made.preflight({})


def test_the_remote_url_of_a_local_path_becomes_a_file_url(repo: Path) -> None:
    url = spawner(repo).remote_url()
    assert url.startswith("file:///")
    assert url.endswith("/origin.git")


def test_a_missing_remote_is_one_line(repo: Path) -> None:
    made = spawner(repo, "[tool.chump.spawners.ray]\naddress = 'http://x'\nremote = 'upstream'")
    with pytest.raises(UsageError, match="no git remote 'upstream'"):
        made.remote_url()


def test_the_job_package_carries_only_what_the_node_needs(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_API_KEY", "orchestrator-only-secret")
    monkeypatch.setenv("FORWARDED_TOKEN", "forwarded-secret-value")
    table = (
        "[tool.chump.spawners.ray]\naddress = 'http://x'\n"
        "agent = ['my-agent', '--in', '{worktree}', '--prompt', '{prompt_file}']\n"
        "forward_env = ['FORWARDED_TOKEN']\nenv = {FIXED = 'yes'}\n"
    )
    made = spawner(repo, table)
    base = git(repo, "rev-parse", "HEAD")
    request = SpawnRequest(
        gap=Gap("R-1"),
        prompt="do R-1",
        worktree=repo / ".chump/worktrees/r-1",
        branch="chump/r-1",
        log_path=repo / ".chump/logs/r-1.log",
        env={**os.environ, "CHUMP_GAP_ID": "R-1", "CHUMP_DISPATCH_DEPTH": "1"},
        base=base,
    )
    payload = made._payload(request, "chump-r-1-x")
    try:
        assert sorted(p.name for p in payload.iterdir()) == [
            "prompt.md",
            "ray_job.py",
            "spec.json",
            "supervisor.py",
        ]
        assert (payload / "spec.json").stat().st_mode & 0o077 == 0  # its owner's only
        spec = json.loads((payload / "spec.json").read_text())
    finally:
        import shutil

        shutil.rmtree(payload)
    assert spec["argv"] == [
        "my-agent",  # found on the node's PATH, not here
        "--in",
        ray_job.WORKTREE_SLOT,
        "--prompt",
        ray_job.PROMPT_SLOT,
    ]
    assert spec["base_sha"] == base
    assert spec["remote_url"].startswith("file:///")
    env = spec["env"]
    assert env["CHUMP_GAP_ID"] == "R-1"
    assert env["FIXED"] == "yes"
    assert env["FORWARDED_TOKEN"] == "forwarded-secret-value"
    assert "PATH" not in env  # the node's own
    assert "MY_API_KEY" not in env  # never shipped unless forwarded
    assert "orchestrator-only-secret" not in json.dumps(spec)
    assert "forwarded-secret-value" in spec["secrets"]  # masked on the node


@pytest.mark.skipif(not available(), reason="the ray extra is not installed")
def test_a_cluster_that_does_not_answer_is_one_line(repo: Path) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    made = spawner(repo, f"[tool.chump.spawners.ray]\naddress = '{address}'")
    with pytest.raises(UsageError, match=f"ray: cannot reach the cluster at {address}"):
        made.client()


def test_without_ray_installed_dispatch_says_how_to_install_it(repo: Path, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no ray here')\n")
    settings_for(repo, "[tool.chump.spawners.ray]\naddress = 'http://127.0.0.1:1'")
    (repo / "docs/gaps.yaml").write_text("gaps:\n  - {id: R-1, title: one}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_chump.cli", "dispatch", "--no-dry-run"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "shadow")},
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [f"chump: error: {INSTALL_HINT}"]
    assert "Traceback" not in proc.stderr
    assert not (repo / ".chump" / "worktrees").exists()
