"""SIGKILL the orchestrator at every marked step of dispatch, watching, finishing and teardown,
restart it, and check what must hold whatever the moment of death.

The steps are read from the source (every ``crash_point("...")`` call), so a step marked
tomorrow is covered without touching this file. Per step, on a real repository with a bare
origin and scripted agents that land their work on main:

1. ``chump dispatch --watch`` with ``CHUMP_TEST_CRASH_AT=<step>`` dies there (SIGKILL);
   every process then alive in a worktree belongs to a dispatch the store knows (for the
   dispatch steps the agents wait at a gate, so they are surely alive at that moment);
2. it is run again (more than once: a gap interrupted by the crash is retried by a later
   run) until every gap shipped, then ``chump cleanup`` runs;
3. then: no gap's agent ever ran twice at once; no process is left running in the
   repository; every dispatch ended with exactly one reflection (in SQLite and in the JSON
   lines sink); no gap shipped twice; every commit an agent made is on a ref; no worktree
   is left.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_chump
from pytest_chump.core.crashpoints import CRASH_ENV
from pytest_chump.state.store import Store
from tests.gitrepos import PYPROJECT, git, make_origin
from tests.waiting import until

PACKAGE = Path(pytest_chump.__file__).parent
GAPS = """\
gaps:
  - {id: CP-A, title: first, priority: P1, effort: s}
  - {id: CP-B, title: after A, priority: P1, effort: s, depends_on: [CP-A]}
  - {id: CP-C, title: alone, priority: P2, effort: s}
"""
IDS = ("CP-A", "CP-B", "CP-C")
TIMEOUT = 120.0
MAX_RUNS = 4


def crash_points() -> list[str]:
    """Every ``crash_point("<name>")`` in the package, in file and line order."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "crash_point"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                found.append((str(path), node.lineno, str(node.args[0].value)))
    return [name for _, _, name in sorted(found)]


def test_the_steps_are_found_in_the_source() -> None:
    steps = crash_points()
    assert len(steps) == len(set(steps)), "two points share a name"
    for stage in ("dispatch.", "spawn.", "watch.", "finish.", "teardown.", "gate.", "resume."):
        assert any(step.startswith(stage) for step in steps), stage


def _repo(tmp_path: Path, gated: bool) -> tuple[Path, Path]:
    """The project: a rules file large enough that prompts pass 64 KiB (a pipe's buffer),
    and with ``gated`` a merge gate that lands the agents' commits."""
    origin, clone = make_origin(tmp_path)
    (clone / "docs/gaps.yaml").write_text(GAPS)
    rules = clone / "docs/process/CHUMP_DISPATCH_RULES.md"
    rules.parent.mkdir(parents=True)
    rules.write_text("".join(f"- rule {n}: keep the tests green\n" for n in range(2500)))
    gate = f'\n[tool.chump.merge_gate]\ncommand = ["{sys.executable}", "-c", "pass"]\n'
    (clone / "pyproject.toml").write_text(PYPROJECT + (gate if gated else ""))
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "backlog")
    git(clone, "push", "--quiet", "origin", "main")
    return origin, clone


def _chump(
    repo: Path, journal: Path, *args: str, crash: str = "", gated: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AGENT_JOURNAL": str(journal),
        "AGENT_MODE": "gate",
        "AGENT_GATE": str(journal.parent / "gate"),
        "AGENT_AFTER_GATE": "commit" if gated else "ship",
        "AGENT_PROMPT_END": "saying what you did.",  # the prompt's last words arrived
        "AGENT_GRANDCHILD": "1",  # a straggler the teardown (or cleanup) must stop
        "CHUMP_SINKS": "sqlite,jsonl",
    }
    env.pop(CRASH_ENV, None)
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.run(
        [sys.executable, "-m", "pytest_chump.cli", *args],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def _refs_containing(repo: Path, sha: str) -> list[str]:
    """Refs of ``repo`` that contain commit ``sha`` (none when it does not have the commit)."""
    found = subprocess.run(
        ["git", "for-each-ref", "--contains", sha, "--format=%(refname)"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.split() if found.returncode == 0 else []


def _processes_under(folder: Path) -> dict[int, tuple[int, str]]:
    """pid -> (process group, command line) of live processes working inside ``folder``
    (agents, their supervisors, the git they run)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_text().replace("\0", " ")
        except OSError:
            continue
        if fields[0] != "Z" and (cwd == str(folder) or cwd.startswith(f"{folder}/")):
            found[int(entry)] = (int(fields[2]), cmdline)
    return found


def _untracked(repo: Path) -> list[str]:
    """Live processes in the worktrees whose process group is no recorded dispatch's."""
    with Store.for_repo(repo) as store:
        tracked = {row.pid for row in store.dispatches() if row.pid}  # ended ones' stragglers too
    live = _processes_under(repo / ".chump/worktrees")
    return [f"{pid}: {cmd}" for pid, (group, cmd) in live.items() if group not in tracked]


@pytest.fixture
def reaper(tmp_path: Path) -> Iterator[None]:
    """Whatever a failing run leaves running in the test's folder is killed afterwards."""
    yield
    for group, _ in _processes_under(tmp_path).values():
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.usefixtures("reaper")
@pytest.mark.parametrize("step", crash_points())
def test_a_crash_at_any_step_loses_nothing_and_doubles_nothing(step: str, tmp_path: Path) -> None:
    """Each step in a repository of its own, one test item per step (they mostly wait on
    processes, so a parallel run spreads them over its workers)."""
    _trial(step, tmp_path)


def _trial(step: str, tmp_path: Path) -> None:
    gated = step.startswith("gate.")
    origin, repo = _repo(tmp_path, gated)
    journal = tmp_path / "journal"
    journal.mkdir()
    gate = tmp_path / "gate"
    if not step.startswith(("dispatch.", "spawn.")):
        gate.touch()  # agents must end for the later steps to be reached
    execute = ("dispatch", "--no-dry-run", "--watch")
    outputs = []
    if step.startswith("resume."):  # a run to resume first: it dies with its agents running
        prelude = _chump(repo, journal, *execute, crash="dispatch.announced", gated=gated)
        outputs.append(prelude.stdout + prelude.stderr)
    crashed = _chump(repo, journal, *execute, crash=step, gated=gated)
    assert crashed.returncode == -signal.SIGKILL, f"{step} not reached:\n{crashed.stdout}"
    # whatever runs now, a restart must find: the identity was durable before it could act
    # (a supervisor never released exits on its own at once: it started nothing)
    assert until(lambda: _untracked(repo) == []), (_untracked(repo), crashed.stdout)
    gate.touch()
    outputs.append(crashed.stdout + crashed.stderr)
    for _ in range(MAX_RUNS):
        run = _chump(repo, journal, *execute, gated=gated)
        outputs.append(run.stdout + run.stderr)
        assert "Traceback" not in outputs[-1], outputs[-1]
        with Store.for_repo(repo) as store:
            if store.shipped_ids() == frozenset(IDS):
                break
    history = "\n---\n".join(outputs)
    cleanup = _chump(repo, journal, "cleanup", gated=gated)
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr

    assert not (journal / "double").exists(), history
    assert _processes_under(tmp_path) == {}, history
    with Store.for_repo(repo) as store:
        rows = store.dispatches()
        reflections = store.reflections(limit=1000)
    assert all(row.outcome is not None for row in rows), history
    shipped = sorted(row.gap_id for row in rows if row.outcome == "shipped")
    assert shipped == sorted(IDS), history
    ids = sorted(int(str(r["dispatch_id"])) for r in reflections)
    assert ids == sorted(row.id for row in rows), history
    lines = (repo / ".chump/reflections.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["dispatch_id"] for line in lines) == ids, history
    last = {}  # each agent's last commit (a rebase rewrites the first one)
    for line in (journal / "commits").read_text(encoding="utf-8").splitlines():
        pid, gap, sha = line.split()
        last[pid] = (gap, sha)
    for gap, sha in last.values():
        holders = _refs_containing(repo, sha) + _refs_containing(origin, sha)
        assert holders, f"{gap}'s commit {sha} is on no ref\n{history}"
    listed = git(repo, "worktree", "list", "--porcelain").count("worktree ")
    assert listed == 1, history
    worktrees = repo / ".chump/worktrees"
    assert not worktrees.exists() or list(worktrees.iterdir()) == [], history
    assert list((repo / ".chump/agents").glob("*.json")) == [], history  # cleanup forgot them
