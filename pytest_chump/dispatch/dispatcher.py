"""Starts one dispatch: lease, worktree and branch, record, prompt, agent — or none of them.

Every step undoes what the earlier steps did when a later one fails, so a failed dispatch
leaves no worktree, no new branch and no lease behind; the caller reports it as
``DISPATCH-FAILED: <ID>: <reason>`` and goes on with other gaps.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

from pytest_chump.core import remote_refs
from pytest_chump.core.config import Settings
from pytest_chump.core.crashpoints import crash_point
from pytest_chump.core.errors import BinaryMissing, ChumpError
from pytest_chump.core.model import Gap, require_safe_id
from pytest_chump.core.plugins import call_event
from pytest_chump.core.protocols import Dispatch, Spawner, SpawnRequest
from pytest_chump.core.records import Outcome
from pytest_chump.core.run import run
from pytest_chump.dispatch.agent_env import agent_env
from pytest_chump.dispatch.setup import SetupFailed, WorktreeSetup
from pytest_chump.dispatch.workspaces import RemoteWorkspaces, Workspaces
from pytest_chump.dispatch.worktrees import Prepared
from pytest_chump.state.liveness import proc_start_ticks
from pytest_chump.state.rows import RetryRow
from pytest_chump.state.store import LeaseLost, Store


class DispatchFailed(ChumpError):
    """A dispatch could not start; ``dispatch_id`` is set when it had been recorded, ``cause``
    says which step failed (``spawn-failed``, ``setup-failed``)."""

    def __init__(
        self,
        message: str,
        dispatch_id: int | None = None,
        cause: str = "spawn-failed",
        binary_missing: bool = False,
    ) -> None:
        super().__init__(message)
        self.dispatch_id = dispatch_id
        self.cause = cause
        self.binary_missing = binary_missing  # the agent's program is not there: a broken arm


REMOTE = "remote"  # ``meta["workspace"]`` of a dispatch whose agent works elsewhere
TAKEN_OVER = "another orchestrator took the dispatch over while it started"
STOPPED = "the run stopped before its agent started"


class TakenOver(ChumpError):
    """Another orchestrator took the dispatch over while this one started it (this one was
    stopped or silent): its worktree and lease are the other's now, nothing is undone."""


class CapacityFull(Exception):
    """``max_parallel`` agents are at work in the repository (counting other orchestrators'):
    nothing more starts until one ends."""


@dataclass
class Flight:
    """A dispatch in flight, with what the loop tracks about it."""

    dispatch: Dispatch
    base_sha: str
    exited_at: float | None = None
    term_sent_at: float | None = None
    kill_sent: bool = False
    stop_outcome: Outcome | None = None
    state: str = "running"  # running / silent / stalled / awaiting-pr
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class Dispatcher:
    """Creates flights for gaps; one per orchestrator, sharing its store and plugins."""

    settings: Settings
    store: Store
    pm: pluggy.PluginManager
    owner: str
    spawner: Callable[[str], Spawner]
    clock: Callable[[], float]
    workspaces: Workspaces
    notify: Callable[[], None] | None = None
    warn: Callable[[str], None] = print
    setup: WorktreeSetup | None = None

    def __post_init__(self) -> None:
        s = self.settings
        if self.setup is None:
            self.setup = WorktreeSetup.from_settings(
                s.repo_root,
                s.worktree,
                s.worktree_include,
                s.configured_secrets(),
                s.log_max_bytes,
            )

    def remove(self, flight: Flight) -> str:
        """Tear down a finished flight's workspace (``after_run`` and ``before_remove`` first),
        committing leftover work before it goes."""
        d = flight.dispatch
        if d.meta.get("workspace") == REMOTE:  # the node ran the steps and removed its own
            return ""
        if self.setup is not None and self.setup.steps:
            env = agent_env(os.environ, self.settings, d.gap.id, d.branch, d.worktree)
            for warning in self.setup.finish(d.worktree, env, self._setup_log(d.gap)):
                self.warn(f"{d.gap.id}: {warning}")
        message = f"chump: save uncommitted work of {d.gap.id}"
        return self.workspaces.remove(d.worktree, message)

    def _setup_log(self, gap: Gap) -> Path:
        return self.settings.logs_dir / f"{gap.slug}.setup.log"

    def start(
        self,
        gap: Gap,
        backend: str,
        model: str | None = None,
        meta: Mapping[str, object] | None = None,
        retry: RetryRow | None = None,
        *,
        announce: bool = True,
        cancelled: Callable[[], bool] | None = None,
    ) -> Flight | None:
        """Start ``gap``; None when another orchestrator holds its lease.

        ``meta`` (e.g. the routing arm and its posterior) is recorded on the dispatch.
        ``retry``: this is that scheduled attempt; its prompt says what failed before, and
        after a merge conflict the branch is first updated with the base when that merges
        cleanly. ``announce``: tell ``chump_dispatched`` plugins here (a start on a worker
        thread leaves that to the loop thread, see :meth:`announce`). ``cancelled``: asked
        once the worktree is ready; True (the run is stopping) undoes it before any agent
        starts (``DispatchFailed`` with cause ``interrupted``).
        """
        require_safe_id(gap.id)
        if cancelled is not None and cancelled():  # stopped before this start began
            raise DispatchFailed(STOPPED, None, "interrupted")
        claimed = self.store.claim(gap.id, self.owner, self.settings.max_parallel)
        if claimed == "full":
            raise CapacityFull(gap.id)
        if claimed != "ok":
            return None
        crash_point("dispatch.claimed")
        try:
            workspaces = self._workspaces_for(backend)
        except ChumpError as exc:  # the spawner cannot be made (its configuration)
            self.store.release_lease(gap.id, self.owner)
            missing = isinstance(exc, BinaryMissing)
            raise DispatchFailed(str(exc), binary_missing=missing) from None
        try:
            prepared = workspaces.prepare(
                self.settings.worktree_dir / gap.slug,
                f"{self.settings.branch_prefix}{gap.slug}",
                self.settings.base_ref,
            )
        except ChumpError as exc:
            self.store.release_lease(gap.id, self.owner)
            raise DispatchFailed(str(exc), cause="setup-failed") from None
        crash_point("dispatch.worktree-ready")
        if cancelled is not None and cancelled():
            workspaces.rollback(prepared)
            self.store.release_lease(gap.id, self.owner)
            raise DispatchFailed(STOPPED, None, "interrupted")
        try:
            extra = dict(meta or {})
            if workspaces is not self.workspaces:
                extra["workspace"] = REMOTE
            if retry is not None:
                extra.update(
                    self._retry_meta(prepared, retry, remote=extra.get("workspace") == REMOTE)
                )
            flight = self._spawn(gap, prepared, backend, model, extra)
        except (TakenOver, LeaseLost):  # not ours to undo any more
            raise DispatchFailed(TAKEN_OVER, None, "interrupted") from None
        except ChumpError as exc:
            if not self.store.holds_lease(gap.id, self.owner):  # e.g. its supervisor killed by
                raise DispatchFailed(TAKEN_OVER, None, "interrupted") from None  # the new owner
            workspaces.rollback(prepared)
            self.store.release_lease(gap.id, self.owner)
            cause = getattr(exc, "cause", "spawn-failed")
            missing = getattr(exc, "binary_missing", False)
            dispatch_id = getattr(exc, "dispatch_id", None)
            raise DispatchFailed(str(exc), dispatch_id, cause, missing) from None
        if announce:
            self.announce(flight)
        return flight

    def _workspaces_for(self, backend: str) -> Workspaces:
        """The orchestrator's workspaces, or none here for a spawner whose agents make their
        own checkout elsewhere (``remote_workspace``, e.g. ``ray``)."""
        if getattr(self.spawner(backend), "remote_workspace", False):
            return RemoteWorkspaces(self.settings.repo_root)
        return self.workspaces

    def announce(self, flight: Flight) -> None:
        """Tell ``chump_dispatched`` plugins (on the loop thread) that ``flight`` started."""
        call_event(self.pm, "chump_dispatched", self.warn, dispatch=flight.dispatch)
        crash_point("dispatch.announced")

    def _spawn(
        self, gap: Gap, prepared: Prepared, backend: str, model: str | None, meta: dict[str, object]
    ) -> Flight:
        base_sha = prepared.start or self.workspaces.head(prepared.worktree)
        dispatch = Dispatch(gap, prepared.branch, prepared.worktree, backend, self.clock(), model)
        dispatch.meta.update(meta)
        chain = meta.get("chain")
        attempt = chain.get("attempt", 1) if isinstance(chain, dict) else 1
        dispatch.dispatch_id = dispatch_id = self.store.add_dispatch(
            gap.id,
            prepared.branch,
            str(prepared.worktree),
            backend,
            self.owner,
            model=model,
            effort=gap.effort,
            priority=gap.priority,
            require_lease=True,
            attempt=attempt,
            previous_id=meta.get("previous_id"),
            meta={
                **meta,
                "base_sha": base_sha,
                "soft_deadline": self.settings.soft_deadline(gap.effort),
            },
        )
        crash_point("dispatch.recorded")
        recorded: list[int] = []

        def record(
            pid: int | None,
            log_path: Path | None,
            record_path: Path | None,
            remote: Mapping[str, object] | None = None,
        ) -> None:
            soft = self.settings.soft_deadline(gap.effort)
            identity = {**meta, "base_sha": base_sha, "soft_deadline": soft}
            if remote is not None:  # where the agent runs elsewhere, to re-attach after a crash
                identity["remote"] = dict(remote)
            self._record_identity(dispatch_id, identity, pid, log_path, record_path)
            recorded.append(pid or 0)
            crash_point("dispatch.pid-recorded")  # the agent is not released yet

        try:
            request = self._request(gap, dispatch)
            request = dataclasses.replace(
                request,
                base=base_sha,
                on_started=lambda pid: record(pid, request.log_path, request.record_path),
                on_remote=lambda ident: record(None, request.log_path, request.record_path, ident),
            )
            if self.setup is not None and meta.get("workspace") != REMOTE:
                created = prepared.created_worktree
                self.setup.prepare(prepared.worktree, created, request.env, self._setup_log(gap))
            dispatch.handle = self.spawner(backend).spawn(request)
        except SetupFailed as exc:
            raise DispatchFailed(str(exc), dispatch.dispatch_id, "setup-failed") from None
        except TakenOver:
            raise
        except Exception as exc:  # a prompt or spawner plugin's bug fails this dispatch only
            reason = str(exc) if isinstance(exc, ChumpError) else f"{type(exc).__name__}: {exc}"
            missing = isinstance(exc, BinaryMissing)
            cause = str(getattr(exc, "cause", "") or "spawn-failed")  # e.g. ``network``
            raise DispatchFailed(reason, dispatch.dispatch_id, cause, missing) from None
        crash_point("dispatch.agent-running")
        handle = dispatch.handle
        if recorded != [handle.pid or 0]:  # a spawner that does not call on_started
            try:
                record(handle.pid, handle.log_path, None)
            except TakenOver:  # the dispatch is another's now: this agent must not run
                handle.kill()
                handle.close()
                raise
        return Flight(dispatch, base_sha)

    def _retry_meta(
        self, prepared: Prepared, retry: RetryRow, remote: bool = False
    ) -> dict[str, object]:
        """What a retried dispatch carries: its place in the chain and the feedback (with the
        result of updating the branch after a merge conflict; an agent working elsewhere is
        asked to do that itself)."""
        feedback = retry.feedback
        if retry.cause == "merge-conflict" and prepared.reused:
            feedback = "\n\n".join(p for p in (feedback, self._update_branch(prepared)) if p)
        elif retry.cause == "merge-conflict" and remote:
            base = self.settings.base_ref
            note = (
                f"Your branch conflicts with {base}: merge {base} into it, resolve the "
                "conflicts, and commit the merge first."
            )
            feedback = "\n\n".join(p for p in (feedback, note) if p)
        chain = {
            "attempt": retry.attempt,
            "feedback_n": retry.feedback_n,
            "transient_n": retry.transient_n,
        }
        return {
            "chain": chain,
            "previous_id": retry.previous_id,
            "retry_kind": retry.kind,
            "retry_cause": retry.cause,
            "feedback": feedback,
        }

    def _update_branch(self, prepared: Prepared) -> str:
        """Merge the base into the reused branch; a note for the prompt saying how it went."""
        base_ref = self.settings.base_ref
        base = remote_refs.resolve(self.settings.repo_root, base_ref)
        if not base:
            return ""
        env = {**os.environ, **self.settings.bot_identity}
        message = f"chump: merge {base_ref} before the next attempt"
        tree = prepared.worktree
        merged = run(
            ["git", "merge", "--no-edit", "-m", message, base], cwd=tree, env=env, check=False
        )
        if merged.returncode == 0:
            return f"Your branch was updated with {base_ref} (it merged cleanly)."
        conflicts = run(
            ["git", "diff", "--name-only", "--diff-filter=U"], cwd=tree, check=False
        ).stdout.split()
        run(["git", "merge", "--abort"], cwd=tree, check=False)
        files = ", ".join(conflicts) or "unknown files"
        return (
            f"Merging {base_ref} into your branch conflicts in: {files}. Merge {base_ref} into "
            "the branch, resolve the conflicts, and commit the merge first."
        )

    def _record_identity(
        self,
        dispatch_id: int,
        meta: dict[str, object],
        pid: int | None,
        log_path: Path | None,
        record_path: Path | None,
    ) -> None:
        """The agent's identity in its row: before the agent may act when the spawner lets
        us (``on_started``), else right after ``spawn`` returned."""
        meta = {**meta, "pid_start": proc_start_ticks(pid or 0)}
        if record_path is not None:
            meta["record"] = str(record_path)
        if not self.store.record_start(
            dispatch_id,
            self.owner,
            state="running",
            pid=pid,
            log_path=str(log_path) if log_path else None,
            meta=meta,
        ):
            raise TakenOver(TAKEN_OVER)

    def _request(self, gap: Gap, dispatch: Dispatch) -> SpawnRequest:
        prompt = self.pm.hook.chump_build_prompt(gap=gap, dispatch=dispatch, settings=self.settings)
        env = agent_env(os.environ, self.settings, gap.id, dispatch.branch, dispatch.worktree)
        return SpawnRequest(
            gap=gap,
            prompt=prompt,
            worktree=dispatch.worktree,
            branch=dispatch.branch,
            log_path=self.settings.logs_dir / f"{gap.slug}.log",
            env=env,
            model=dispatch.model,
            notify=self.notify,
            record_path=self.settings.state_dir / "agents" / f"{dispatch.dispatch_id}.json",
            secrets=tuple(self.settings.configured_secrets()),
            log_max_bytes=self.settings.log_max_bytes,
        )
