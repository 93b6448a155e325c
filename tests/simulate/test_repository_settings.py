"""A simulation of a repository uses what the repository configures — its prompt template,
rules file and ``.chump/routing.yaml`` — as a real dispatch there would, and leaves the
repository as it found it (no store, worktree, branch or file of its own)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pytest_chump import cli
from pytest_chump.core.protocols import Dispatch, SpawnRequest
from pytest_chump.loop.app import App
from pytest_chump.simulate.model import Model
from pytest_chump.simulate.run import simulate
from pytest_chump.simulate.world import World
from tests.gitrepos import git, make_origin

BACKLOG = """\
gaps:
  - {id: BIG-1, priority: P1, effort: l}
  - {id: SMALL-1, priority: P1, effort: s}
  - {id: SMALL-2, priority: P2, effort: xs, depends_on: [SMALL-1]}
"""
PYPROJECT = """\
[tool.chump]
max_parallel = 2
pr_provider = "git"
prompt_template = "agents/prompt.txt"
rules_file = "agents/RULES.md"
"""
TEMPLATE = "Gap {gap_id} on {branch} in {worktree}.\nRules:\n{rules}\n\n{ship}\n"
ROUTING = """\
rules:
  - match: {effort: l}
    arms: [{spawner: codex}]
default: [{spawner: claude}]
"""
ROUTED = {"BIG-1": "codex", "SMALL-1": "claude", "SMALL-2": "claude"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with its own template, rules and routing (committed, but .chump/)."""
    _, clone = make_origin(tmp_path)
    (clone / "docs/gaps.yaml").write_text(BACKLOG)
    (clone / "pyproject.toml").write_text(PYPROJECT)
    (clone / "agents").mkdir()
    (clone / "agents/prompt.txt").write_text(TEMPLATE)
    (clone / "agents/RULES.md").write_text("Never push to main by hand.\n")
    git(clone, "add", "-A")
    git(clone, "commit", "--quiet", "-m", "configured")
    (clone / ".chump").mkdir()
    (clone / ".chump/routing.yaml").write_text(ROUTING)
    return clone


def state_of(repo: Path) -> dict[str, object]:
    """The repository's refs, worktrees and status, and every file and folder of it (.git
    included) with each file's size and mtime: what a simulation must leave as it is."""
    files = {
        str(p.relative_to(repo)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else ()
        for p in sorted(repo.rglob("*"))
    }
    return {
        "files": files,
        "refs": git(repo, "for-each-ref"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
        "status": git(repo, "--no-optional-locks", "status", "--porcelain", "--ignored"),
    }


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[SpawnRequest, str]]:
    """What each simulated agent was started with: its request and its backend."""
    requests: list[tuple[SpawnRequest, str]] = []
    real_start = World.start

    def spy(world: World, request: SpawnRequest, backend: str) -> object:
        requests.append((request, backend))
        return real_start(world, request, backend)

    monkeypatch.setattr(World, "start", spy)
    return requests


def test_a_simulation_prompts_and_routes_as_the_repository_says(
    repo: Path, started: list[tuple[SpawnRequest, str]]
) -> None:
    app = App.create({"repo_root": str(repo)})
    before = state_of(repo)
    told = io.StringIO()
    run = simulate(
        app.load_backlog(),
        slots=2,
        model=Model(seed=1, failures=False),
        base=app.settings,
        events=told,
    )
    assert run.shipped == 3
    assert state_of(repo) == before  # nothing written, no branch, no worktree

    events = [json.loads(line) for line in told.getvalue().splitlines()]
    backend = {e["gap_id"]: e["backend"] for e in events if e["event"] == "dispatched"}
    assert backend == ROUTED

    # each agent was told what a real dispatch in this repository tells it
    assert sorted(r.gap.id for r, _ in started) == sorted(ROUTED)
    for request, arm in started:
        assert "Never push to main by hand." in request.prompt
        assert request.prompt.startswith(f"Gap {request.gap.id} on chump/")
        assert request.worktree == app.worktree_for(request.gap)
        real = Dispatch(request.gap, request.branch, request.worktree, arm, 0.0)
        hook = app.pm.hook.chump_build_prompt
        assert request.prompt == hook(gap=request.gap, dispatch=real, settings=app.settings)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_a_bad_template_fails_the_simulation_as_it_fails_a_dispatch(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = repo / "agents/prompt.txt"
    template.write_text("Gap {gap_id}\nwith {no_such_thing}\n")
    root = ("--repo-root", str(repo))
    real = run_cli(capsys, "dispatch", *root)
    simulated = run_cli(capsys, "simulate", "--policy", "continuous", *root)
    assert real[0] == simulated[0] == 2
    assert f"{template}:2" in real[2]
    assert "no_such_thing" in real[2]
    assert simulated[2] == real[2]
    template.unlink()
    assert run_cli(capsys, "simulate", *root)[2] == run_cli(capsys, "dispatch", *root)[2]


def test_the_command_keeps_the_routing_rules(
    repo: Path, capsys: pytest.CaptureFixture[str], started: list[tuple[SpawnRequest, str]]
) -> None:
    """``chump simulate`` with a routing table of several arms keeps its rules (it used to
    flatten them into one default list of every arm)."""
    before = state_of(repo)
    argv = ("simulate", "--policy", "continuous", "--no-failures", "--json")
    status, out, err = run_cli(capsys, *argv, "--repo-root", str(repo))
    assert status == 0, err
    assert json.loads(out)["backends"] == ["codex", "claude"]
    assert {request.gap.id: arm for request, arm in started} == ROUTED
    assert state_of(repo) == before


def test_the_repository_picker_order_is_simulated(repo: Path) -> None:
    """Without an ``order``, a repository's simulation picks as the repository does."""
    for order in ("declared", "effort"):
        app = App.create({"repo_root": str(repo), "picker_order": order})
        run = simulate(app.load_backlog(), model=Model(failures=False), base=app.settings)
        assert run.order == order
    assert simulate(app.load_backlog(), base=app.settings, order="critical-path").order == (
        "critical-path"
    )
