"""The interfaces a plugin implements: spawner and its handle, PR provider, sink, backlog source.

A third-party spawner, PR provider or sink only has to satisfy the protocols here; the
requests and statuses they exchange with the loop, and the dispatch that carries an agent's
handle, are defined alongside. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings
    from pytest_chump.core.model import Gap
    from pytest_chump.core.records import Backlog, Reflection


@dataclass(frozen=True, slots=True)
class SpawnRequest:
    """Everything a spawner needs to start one agent for one gap."""

    gap: Gap
    prompt: str
    worktree: Path
    branch: str
    log_path: Path
    env: Mapping[str, str]
    model: str | None = None
    prompt_file: Path | None = None
    notify: Callable[[], None] | None = None
    """Call (from any thread) when the agent exits, and when it emits output (a spawner may do
    that at most a few times a second): wakes the loop."""
    record_path: Path | None = None
    """Where a local runner keeps the agent's identity and exit status (one file per
    dispatch), so a later orchestrator can adopt the agent and learn how it ended."""
    on_started: Callable[[int], None] | None = None
    """Call with the process (group) id as soon as it exists and before the agent may act:
    the dispatcher records it durably, so a crash at any point leaves no untracked agent.
    Call it inside ``spawn``, on the thread ``spawn`` runs on: it writes through that
    thread's store connection."""
    secrets: tuple[str, ...] = ()
    """Secret values (beyond those the environment names) to mask in the agent's output."""
    log_max_bytes: int = 0
    """Disk each of the agent's log files may take (0: unlimited); the newest output is kept."""
    base: str = ""
    """The commit the branch starts from (a SHA), for a spawner that makes its own checkout
    elsewhere (a Ray node); "" when unknown."""
    on_remote: Callable[[Mapping[str, object]], None] | None = None
    """For an agent that runs elsewhere: call with what identifies it there (e.g. a Ray job
    id) *before* starting it. The dispatcher records it durably, so a restarted orchestrator
    re-attaches to the agent through the spawner's ``adopt`` instead of losing it."""


@runtime_checkable
class SpawnHandle(Protocol):
    """A running agent. Must not assume a local process: a remote engine implements the same.

    Made on the worker thread that ran ``spawn`` (which kills and closes it if the start
    fails after all); then used from the loop thread only — never from two threads at
    once."""

    pid: int | None
    log_path: Path | None

    def poll(self) -> int | None:
        """Exit status when the agent has finished, else None."""

    def terminate(self) -> None:
        """Ask the agent (and everything it started) to stop."""

    def kill(self) -> None:
        """Stop the agent (and everything it started) now."""

    def stderr_tail(self) -> list[str]:
        """The last WARN/ERROR/FAIL/PANIC lines the agent wrote, oldest first."""

    def last_activity(self) -> float:
        """Monotonic time of the agent's last output or stream event."""

    def report(self) -> Mapping[str, object]:
        """Structured facts the agent reported (e.g. claude's result event: ``is_error``,
        ``num_turns``, ``total_cost_usd``, ``session_id``, ``subtype``, ``model``); {} if none.

        A handle of an agent run elsewhere adds ``ended_by`` (a cause such as ``worker-lost``)
        and ``ended_why`` once the agent ended for a reason outside it: the loop then ends the
        dispatch ``killed`` with that cause."""

    def close(self) -> None:
        """Release threads, pipes and files once the agent has finished or was killed."""


@runtime_checkable
class Spawner(Protocol):
    """Starts agents. ``name`` is the label recorded on dispatches and reflections.

    One object per spawner name, made on the loop thread when the orchestrator starts;
    ``spawn`` runs on a dispatch worker thread, possibly for two gaps at the same time (see
    ``pytest_chump.hookspecs``)."""

    name: str

    def spawn(self, request: SpawnRequest) -> SpawnHandle:
        """Start the agent; raise ``ChumpError`` with a one-line reason when it cannot start.
        Thread-safe: other starts may run at the same time."""


@dataclass(frozen=True, slots=True)
class Watch:
    """A branch in flight, as a PR provider is asked about it."""

    branch: str
    gap_id: str
    base_sha: str = ""
    """The commit the branch started from: a branch still there has no work to ship."""
    worktree: Path | None = None
    agent_finished: bool = False
    exit_code: int | None = None  # the agent's exit status once it finished


@dataclass(frozen=True, slots=True)
class PrStatus:
    """What a PR provider knows about the pull request of one branch.

    ``number`` is None for forges without numbers (the offline git provider).
    """

    number: int | None
    state: str  # OPEN / CLOSED / MERGED
    merge_state_status: str = ""
    checks: str = "pending"  # pending / passing / failing
    failing_checks: tuple[str, ...] = ()
    cause: str = ""  # for a CLOSED/failed PR: why (merge-conflict, tests-failed, ...)
    detail: str = ""  # short evidence for the reflection notes (e.g. last lines of a check)
    superseded_by: int | None = None  # another PR for the same gap merged: race lost
    review: str = ""  # "changes-requested" when a review asks for changes


@runtime_checkable
class PrProvider(Protocol):
    """Reports pull-request state for many branches in one call per poll."""

    name: str

    def poll(self, watches: Sequence[Watch]) -> Mapping[str, PrStatus]:
        """State per branch that has a PR, in one batched call; branches without one are absent.

        Raise ``ChumpError`` for a transient failure: the loop logs it and polls again later.
        A provider that answered from what it saw at an earlier poll (it could not ask the
        forge now without waiting) sets an attribute ``stale = True``: the loop then uses the
        answer but does not count the forge as asked since an agent exited.
        """


@runtime_checkable
class Sink(Protocol):
    """Stores reflections."""

    name: str

    def write(self, reflection: Reflection) -> None:
        """Persist one reflection; raising is logged by the caller and never stops the loop."""


@runtime_checkable
class BacklogSource(Protocol):
    """Where gaps come from: a YAML file or directory, an issue tracker, anything."""

    name: str

    def load(self) -> Backlog:
        """Every gap, and every problem tied to its gap (``check_mappings`` turns plain
        mappings into both); raise ``ChumpError`` when the backlog cannot be read at all."""


@dataclass(slots=True)
class Dispatch:
    """One gap handed to one agent: the unit that gets exactly one reflection."""

    gap: Gap
    branch: str
    worktree: Path
    backend: str
    started_at: float
    model: str | None = None
    handle: SpawnHandle | None = None
    dispatch_id: int | None = None
    meta: dict[str, object] = field(default_factory=dict)


SpawnerFactory = Callable[["Settings"], Spawner]
PrProviderFactory = Callable[["Settings"], PrProvider]
SinkFactory = Callable[["Settings"], Sink]
BacklogSourceFactory = Callable[["Settings"], BacklogSource]
Register = Callable[[str, Callable[["Settings"], object]], None]
