"""Long-running orchestrators must not leak: 32 dispatches through the real loop (git worktrees,
agent processes, the store; eight rounds of four at once) leave open file descriptors and child
processes where they were."""

from __future__ import annotations

import io
from pathlib import Path

from pytest_chump.loop.app import App
from pytest_chump.loop.orchestrator import Orchestrator
from pytest_chump.loop.progress import Progress
from pytest_chump.state.store import Store
from tests.gitrepos import child_pids, make_origin, open_fds

PYPROJECT = """\
[tool.chump]
spawner = "true"
pr_provider = "instant"
max_parallel = 4
poll_interval = "10ms"

[tool.chump.spawners.true]
command = ["true"]
stdin = false
"""


def run_backlog(repo: Path, first: int, count: int) -> Orchestrator:
    ids = [f"LEAK-{n:04d}" for n in range(first, first + count)]
    (repo / "docs/gaps.yaml").write_text(
        "gaps:\n" + "".join(f"  - {{id: {i}, priority: P1, effort: s}}\n" for i in ids)
    )
    app = App.create({"repo_root": str(repo)})
    out = io.StringIO()
    with Store.for_repo(repo) as store:
        orch = Orchestrator(app, store, app.spawner_factory(), app.provider(), Progress(out, out))
        orch.run()
    assert orch.finisher.counts["shipped"] == count, out.getvalue()
    return orch


def test_thirty_two_dispatches_leak_no_fds_or_processes(tmp_path: Path) -> None:
    _, repo = make_origin(tmp_path)
    (repo / "pyproject.toml").write_text(PYPROJECT)
    run_backlog(repo, 0, 4)  # warm-up: imports, git's first run, sqlite caches
    fds, children = open_fds(), child_pids()
    run_backlog(repo, 4, 32)  # any leak per dispatch shows: counts must come back exactly
    assert open_fds() == fds
    assert child_pids() == children
