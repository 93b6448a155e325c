"""The monitor's view of the PR provider: an answer from an earlier look is used, but does not
count as the forge asked since an agent exited."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from pytest_chump.core.model import Gap
from pytest_chump.core.protocols import Dispatch, PrStatus, Watch
from pytest_chump.dispatch.dispatcher import Flight
from pytest_chump.loop.app import App
from pytest_chump.loop.finish import Finisher
from pytest_chump.loop.monitor import Monitor
from pytest_chump.loop.progress import Progress
from pytest_chump.state.store import Store


class Provider:
    """Answers nothing; ``stale`` as a test sets it."""

    name = "stub"

    def __init__(self, stale: bool) -> None:
        self.stale = stale

    def poll(self, watches: Sequence[Watch]) -> Mapping[str, PrStatus]:
        return {}


@pytest.mark.parametrize("stale", [False, True], ids=["asked-now", "earlier-look"])
def test_a_stale_answer_is_not_the_forge_asked_since_the_agent_exited(
    tmp_path: Path, stale: bool
) -> None:
    """An agent past its soft deadline that exited is ``stalled`` once the provider was asked
    since its exit: an answer from refs fetched before the exit (the git provider's fetch
    failed beside a worktree being made) must not conclude that it opened no pull request."""
    app = App.create({"repo_root": str(tmp_path)})
    progress = Progress(io.StringIO(), io.StringIO())
    with Store.for_repo(tmp_path) as store:
        finisher = Finisher(app, store, progress, "me", lambda: 20.0, lambda flight: "")
        monitor = Monitor(
            app.settings, store, Provider(stale), progress, finisher, lambda: 20.0,
            base_done=frozenset,
        )  # fmt: skip
        dispatch = Dispatch(Gap("M-1"), "chump/m-1", tmp_path / "wt", "claude", 0.0)
        flight = Flight(dispatch, "", exited_at=10.0)
        monitor.poll([flight])
        assert monitor.observe(flight).asked_since_exit is not stale
