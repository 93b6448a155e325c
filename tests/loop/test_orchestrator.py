"""The orchestrator loop end to end: real git (bare origin + clone), real agent processes.

Agents are small Python scripts run through the ``command`` spawner; the offline ``git``
PR provider sees their work land on origin/main.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.state.store import Store
from tests.gitrepos import AGENT, PYPROJECT, git, repo  # noqa: F401  (fixture)


def orchestrate(repo: Path, **flags: object) -> tuple[Orchestrator, str]:
    app = App.create({"repo_root": str(repo), **flags})
    out = io.StringIO()
    with Store.for_repo(repo) as store:
        orch = Orchestrator(app, store, app.spawner_factory(), app.provider(), Progress(out, out))
        orch.run()
    return orch, out.getvalue()


def test_six_gaps_with_dependencies_all_ship(repo: Path) -> None:
    orch, out = orchestrate(repo)
    assert orch.finisher.counts["shipped"] == 6, out
    assert not orch.flights
    git(repo, "fetch", "--quiet", "origin")
    landed = git(repo, "ls-tree", "--name-only", "origin/main").split()
    assert {f"E2E-{x}.txt" for x in "ABCDEF"} <= set(landed)
    order = [line.split()[1] for line in out.splitlines() if line.startswith("OUTCOME:")]
    assert order.index("E2E-A") < order.index("E2E-B") < order.index("E2E-D")
    assert order.index("E2E-C") < order.index("E2E-D")
    assert order.index("E2E-E") < order.index("E2E-F")
    with Store.for_repo(repo) as store:
        assert len(store.reflections()) == 6
        assert store.live_leases() == {}
        assert all(r.outcome == "shipped" for r in store.dispatches())
    assert not list((repo / ".chump/worktrees").iterdir())  # shipped worktrees removed
    assert git(repo, "branch", "--list", "chump/e2e-a")  # branches kept


def test_deadline_ladder_kills_agent_and_its_children(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "docs/gaps.yaml").write_text("gaps:\n  - {id: SLOW-1, priority: P1, effort: s}\n")
    monkeypatch.setenv("AGENT_MODE", "sleep")
    orch, out = orchestrate(repo, deadline_scale="0.0002", kill_grace="0.2")  # 20m -> 0.24s
    assert orch.finisher.counts["killed"] == 1, out
    (row,) = orch.finisher.rows
    assert row[2].reason.startswith("soft-deadline exceeded")
    log = (repo / ".chump/logs/slow-1.log").read_text()
    grandchild = int(log.split("grandchild ")[1].split()[0])
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_failing_agent_is_killed_with_its_stderr_in_the_reflection(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "docs/gaps.yaml").write_text("gaps:\n  - {id: BAD-1, priority: P1, effort: s}\n")
    monkeypatch.setenv("AGENT_MODE", "fail")
    orch, _ = orchestrate(repo)
    assert orch.finisher.counts["killed"] == 1
    with Store.for_repo(repo) as store:
        (record,) = store.reflections()
    assert record["notes"].startswith("backend=script cause:agent-error reason: exit code 3")
    assert "ERROR: the build is broken beyond repair" in record["notes"]


def test_missing_agent_binary_is_a_dispatch_failure_not_a_crash(repo: Path) -> None:
    (repo / "pyproject.toml").write_text(
        PYPROJECT.replace(f'"{sys.executable}", "{AGENT}"', '"/nonexistent/agent-bin"')
    )
    orch, out = orchestrate(repo)
    assert "DISPATCH-FAILED: E2E-A: /nonexistent/agent-bin" in out
    assert orch.finisher.counts["spawn_failures"] >= 1
    with Store.for_repo(repo) as store:
        assert store.live_leases() == {}
    assert not git(repo, "branch", "--list", "chump/e2e-a")  # rolled back
    assert os.listdir(repo / ".chump/worktrees") == []


def test_gap_marked_done_on_the_base_by_another_change_is_race_abandoned(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "docs/gaps.yaml").write_text("gaps:\n  - {id: RACE-1, priority: P1, effort: s}\n")
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(tmp_path / "origin.git"), str(other))
    (other / "docs/gaps.yaml").write_text(
        "gaps:\n  - {id: RACE-1, priority: P1, effort: s, status: done}\n"
    )
    git(other, "commit", "--quiet", "-am", "RACE-1 done by a human")
    git(other, "push", "--quiet", "origin", "main")
    monkeypatch.setenv("AGENT_MODE", "sleep")
    orch, out = orchestrate(repo, kill_grace="5s")
    assert orch.finisher.counts["race_abandoned"] == 1, out
    (row,) = orch.finisher.rows
    assert row[2].reason == "gap marked done on the base"
    with Store.for_repo(repo) as store:
        (record,) = store.reflections()
    assert record["outcome"] == "race_abandoned"
    assert "cause:" not in record["notes"]  # a race lost is not a failure


def test_dispatch_row_records_the_routing_arm_and_its_posterior(repo: Path) -> None:
    (repo / "docs/gaps.yaml").write_text("gaps:\n  - {id: ARM-1, priority: P1, effort: s}\n")
    orch, out = orchestrate(repo)
    assert orch.finisher.counts["shipped"] == 1, out
    with Store.for_repo(repo) as store:
        (row,) = store.dispatches()
    meta = row.meta_dict
    assert (row.gap_id, row.backend, meta["arm"]) == ("ARM-1", "script", "script")
    posterior = meta["posterior"]
    assert isinstance(posterior, dict)
    assert posterior["script"] == 0.5  # Beta(1, 1): no history for this arm yet
    for label, mean in posterior.items():
        assert isinstance(label, str)
        assert isinstance(mean, float)
        assert 0.0 < mean < 1.0, (label, mean)
