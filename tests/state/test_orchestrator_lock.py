"""One exclusive orchestrator per repository; a second one nudges it to re-read the backlog."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_chump.state.orchestrator_lock import exclusive, running_pid
from pytest_chump.state.store import Store
from tests.chumpproc import ChumpProcess
from tests.gitrepos import repo  # noqa: F401  (fixture)

HOLD = """
import sys
from pathlib import Path
from pytest_chump.state.orchestrator_lock import exclusive
with exclusive(Path(sys.argv[1])) as mine:
    print("mine" if mine else "busy", flush=True)
    sys.stdin.readline()
"""


def test_lock_is_exclusive_across_processes_and_names_its_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "mine"
    assert running_pid(tmp_path) == holder.pid
    with exclusive(tmp_path) as mine:
        assert not mine
    holder.communicate("done\n")
    assert running_pid(tmp_path) is None  # released, pid file removed
    with exclusive(tmp_path) as mine:
        assert mine
        assert running_pid(tmp_path) is None or running_pid(tmp_path) == os.getpid()


def test_second_exclusive_orchestrator_nudges_the_first_to_reload(
    repo: Path,
) -> None:
    gate = repo.parent / "go"
    env = {"AGENT_MODE": "gate", "AGENT_GATE": str(gate)}
    (repo / "docs/gaps.yaml").write_text("gaps:\n  - {id: NUDGE-1, priority: P1, effort: s}\n")
    args = ("dispatch", "--no-dry-run", "--watch", "--exclusive")
    first = ChumpProcess(repo, *args, env=env)
    first.wait_for("DISPATCHED:")
    with (repo / "docs/gaps.yaml").open("a") as fh:
        fh.write("  - {id: NUDGE-2, priority: P1, effort: s}\n")
    second = ChumpProcess(repo, *args, env=env)
    assert second.finish(timeout=30) == 0
    assert "nudged it to re-read the backlog" in second.text
    first.wait_for("RELOADED:")
    gate.write_text("go")
    assert first.finish() == 0, first.text
    assert "shipped=2" in first.text
    with Store.for_repo(repo) as store:
        assert sorted(r.gap_id for r in store.dispatches()) == ["NUDGE-1", "NUDGE-2"]
