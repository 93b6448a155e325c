"""The ``git`` provider: an offline forge where "merged" means the work reached the base branch.

Shipped is ancestry or an equal patch-id (squash and rebase merges); a pushed branch deleted
unmerged is CLOSED; with ``[tool.chump.merge_gate]`` finished branches are checked and merged.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pytest_chump import hookimpl
from pytest_chump.core.config import Settings
from pytest_chump.core.errors import ChumpError, UsageError
from pytest_chump.core.protocols import PrStatus, Register, Watch
from pytest_chump.core.remote_refs import (
    NAMESPACE,
    check_name,
    fetch,
    newer,
    own_ref,
    resolve,
    users_ref,
)
from pytest_chump.core.run import clean_env, run
from pytest_chump.providers.gate_config import KEYS as KEYS  # re-exported for 0.1 imports
from pytest_chump.providers.gate_config import SECTION, GateConfig, parse_gate
from pytest_chump.providers.gate_record import BacklogRecorder
from pytest_chump.providers.merge_gate import PENDING, MergeGate, Merger, gate_feedback
from pytest_chump.state.locks import fetch_lock, repo_lock

DIFF_FLAGS = ("--no-color", "--no-ext-diff", "--no-renames")
CACHE_LIMIT = 4096
PREFLIGHT_TIMEOUT = 30.0  # seconds the remote may take to answer before the first dispatch
BESIDE_TRIES = 3  # fetches in a row that may fail beside a worktree being added, unreported


def split_base(base_ref: str, remotes: Sequence[str]) -> tuple[str, str]:
    """(remote, branch): ``origin/main`` -> (origin, main); a local ``main`` -> ("", main)."""
    remote, _, branch = base_ref.removeprefix("refs/remotes/").partition("/")
    if branch and remote in remotes:
        return remote, branch
    return "", base_ref.removeprefix("refs/heads/")


class GitProvider:
    """Polls branches against the base ref; owns the merge gate's worker threads when enabled."""

    name = "git"

    def __init__(
        self,
        repo_root: Path,
        base_ref: str,
        gate: GateConfig | None = None,
        identity: Mapping[str, str] | None = None,
        backlog: str | None = None,
        status_aliases: Mapping[str, str] | None = None,
    ) -> None:
        """``backlog`` (relative to the repository): the YAML backlog the merge gate marks a
        gap done in when it merges the gap's branch (None: it records nothing)."""
        self.repo_root, self.base_ref = repo_root, base_ref
        self.remote, self.base_branch = split_base(base_ref, self._git("remote").split())
        if self.remote:
            check_name("remote", self.remote)
            check_name("branch", self.base_branch)
        self.notify: Callable[[], None] | None = None
        self.calls = 0
        self._identity = dict(identity or {})
        self._pushed: dict[str, str] = {}  # branch -> last sha seen on the remote
        self._shipped_cache: dict[tuple[str, str, str], bool] = {}
        self._saved: set[str] = set()
        self._refs: dict[str, str] = {}  # refname -> commit, listed once per poll
        self.stale = False
        """The last poll answered from the refs of an earlier fetch (its own failed beside a
        worktree being made): the loop does not count it as the forge asked."""
        self._failed_beside = 0  # fetches in a row failed beside another holder of the lock
        self.gate: MergeGate | None = None
        if gate is not None:
            record = (
                BacklogRecorder(repo_root, backlog, self._identity, status_aliases)
                if backlog
                else None
            )
            merger = Merger(
                repo_root, self.remote, self.base_branch, gate.merge, self._identity, record
            )
            self.gate = MergeGate(gate.command, gate.timeout, merger, self._gate_done)

    def _gate_done(self) -> None:
        if self.notify is not None:
            self.notify()

    def _git(self, *args: str, check: bool = True) -> str:
        return run(["git", *args], cwd=self.repo_root, check=check).stdout.strip()

    def head(self) -> str:
        """The branch the main checkout is on ("" when detached)."""
        return self._git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)

    def _sha(self, ref: str) -> str:
        return self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)

    def preflight(self) -> None:
        """Before any dispatch: the remote answers and has the base branch (or, without a
        remote, the base ref exists); else a one-line ``UsageError`` with the fix."""
        if not self.remote:
            if not resolve(self.repo_root, self.base_ref):
                missing = f"git provider: base ref {self.base_ref!r} not found"
                raise UsageError(f"{missing}; set base_ref")
            return
        argv = ["git", "ls-remote", "--exit-code", "--heads", self.remote, self.base_branch]
        proc = run(argv, cwd=self.repo_root, check=False, timeout=PREFLIGHT_TIMEOUT)
        if proc.returncode == 2:
            raise UsageError(
                f"git provider: {self.remote} has no branch {self.base_branch!r}; "
                "push it or set base_ref"
            )
        if proc.returncode != 0:
            lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()] or ["no answer"]
            said = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0])
            raise UsageError(
                f"git provider: cannot reach {self.remote}: {said.removeprefix('fatal: ')} "
                "(check the network and `git remote -v`)"
            )

    def feedback(self, branch: str, status: PrStatus | None) -> str:
        """What the next attempt of a failed branch should know beyond the verdict: the end of
        the merge gate's check output ("" without a gate)."""
        return gate_feedback(self.repo_root, branch) if self.gate is not None else ""

    def poll(self, watches: Sequence[Watch]) -> Mapping[str, PrStatus]:
        """One fetch and one listing of every branch tip for all watches; ancestry and
        patch-id checks only for tips not seen before (cached). Sets ``stale``."""
        self.calls += 1
        self.stale = False
        self._refs = self._fetch_and_list() if self.remote else self._list_refs()
        base_tip = (
            newer(
                self.repo_root,
                self._tip(own_ref(self.remote, self.base_branch)),
                self._tip(users_ref(self.remote, self.base_branch)),
            )
            if self.remote
            else self._tip(f"refs/heads/{self.base_ref}")
        ) or self._sha(self.base_ref)
        if not base_tip:
            raise ChumpError(f"git provider: base ref {self.base_ref!r} not found")
        self._forget({w.branch for w in watches})
        result: dict[str, PrStatus] = {}
        for watch in watches:
            status = self._status(watch, base_tip)
            if status is not None:
                result[watch.branch] = status
        return result

    def _fetch_and_list(self) -> dict[str, str]:
        """Fetch the remote into chump's namespace, then list the refs, never waiting for a
        worktree being created or removed (the loop thread polls; workers hold the repository
        lock for seconds in a large repository).

        With the repository lock free, it is held for the fetch, as every fetch of chump's
        that may wait does. Held by someone else, the fetch runs beside it: the one thing it
        conflicts with there is the first milliseconds of a ``git worktree add`` (see
        ``state.locks.repo_lock``), where it fails and changes nothing. Such a failure is not
        reported: the poll answers from the refs of the last fetch and says so (``stale``),
        and the next poll fetches again; ``BESIDE_TRIES`` failures in a row are reported (the
        remote is gone, not a worktree in the way). Fetches and the listing hold the fetch
        lock, so they never overlap another writer of chump's refs.
        """
        with repo_lock(self.repo_root, wait=False) as alone, fetch_lock(self.repo_root):
            try:
                fetch(self.repo_root, self.remote, prune=True)
                self._failed_beside = 0
            except ChumpError:
                if alone:
                    raise
                self._failed_beside += 1
                if self._failed_beside >= BESIDE_TRIES:
                    raise
                self.stale = True
            return self._list_refs()

    def _list_refs(self) -> dict[str, str]:
        """refname -> commit for every local branch, chump's copy of every branch of the
        remote and the user's remote-tracking base branch (one process)."""
        patterns = ["refs/heads/"]
        if self.remote:
            patterns += [f"{NAMESPACE}/{self.remote}/", users_ref(self.remote, self.base_branch)]
        out = self._git("for-each-ref", "--format=%(objectname) %(refname)", *patterns)
        pairs = (line.partition(" ") for line in out.splitlines())
        return {ref: sha for sha, _, ref in pairs if ref}

    def _tip(self, refname: str) -> str:
        return self._refs.get(refname, "")

    def _forget(self, watched: set[str]) -> None:
        self._pushed = {b: sha for b, sha in self._pushed.items() if b in watched}
        self._saved &= watched
        if len(self._shipped_cache) > CACHE_LIMIT:
            self._shipped_cache.clear()
        if self.gate is not None:
            self.gate.forget(watched)

    def _status(self, watch: Watch, base_tip: str) -> PrStatus | None:
        pushed, seen, local = self._tips_of(watch)
        tips = [t for t in dict.fromkeys((local, pushed, seen)) if t and t != watch.base_sha]
        if not tips:
            return None
        gated = self.gate.result(watch.branch, local) if self.gate is not None else None
        if gated is not None and gated.state == "MERGED":
            return gated  # the gate's own merge: it carries the synthetic number
        if self.gate is not None and self.gate.running(watch.branch):
            return PENDING  # its merge may have landed already: the gate's verdict comes next
        if any(self._shipped(watch.base_sha, tip, base_tip) for tip in tips):
            return PrStatus(None, "MERGED")
        if seen and not pushed:
            detail = f"branch deleted from {self.remote} without being merged"
            return PrStatus(None, "CLOSED", cause="branch-deleted", detail=detail)
        if (
            self.gate is not None
            and watch.agent_finished
            and watch.exit_code in (0, None)
            and local in tips
        ):
            return self._gate_status(watch, local)
        return PrStatus(None, "OPEN") if pushed else None

    def _tips_of(self, watch: Watch) -> tuple[str, str, str]:
        """(on the remote now, on the remote at an earlier poll, local) tips of the branch.

        Once the agent finished, the gate first commits what it left uncommitted in its worktree.
        """
        pushed = self._tip(own_ref(self.remote, watch.branch)) if self.remote else ""
        seen = self._pushed.get(watch.branch, "")
        if pushed:
            self._pushed[watch.branch] = pushed
        tree, fresh = watch.worktree, watch.branch not in self._saved
        if (
            self.gate is not None
            and watch.agent_finished
            and watch.exit_code in (0, None)
            and fresh
            and tree is not None
        ):
            self._saved.add(watch.branch)
            if tree.is_dir() and self._save(tree, watch.gap_id):
                return pushed, seen, self._sha(f"refs/heads/{watch.branch}")  # moved just now
        return pushed, seen, self._tip(f"refs/heads/{watch.branch}")

    def _save(self, worktree: Path, gap_id: str) -> bool:
        """Commit what the agent left uncommitted; True when a commit was made."""
        from pytest_chump.dispatch.worktrees import save_work

        message = f"chump: save uncommitted work of {gap_id} for the merge gate"
        try:
            return save_work(worktree, message, env=clean_env(None, **self._identity))
        except ChumpError:  # unsaved work is checked but not merged: the tip still is
            return False

    def _gate_status(self, watch: Watch, tip: str) -> PrStatus:
        assert self.gate is not None
        if watch.worktree is None or not watch.worktree.is_dir():
            detail = f"no worktree to run the check of {watch.branch} in"
            return PrStatus(None, "CLOSED", cause="gate-error", detail=detail)
        label = f"{watch.branch} ({watch.gap_id})"
        return self.gate.status(watch.branch, tip, watch.worktree, label, watch.gap_id)

    # --- shipped detection -------------------------------------------------------------

    def _shipped(self, start: str, tip: str, base_tip: str) -> bool:
        """Whether ``tip``'s work is on the base: ancestry, else an equal patch-id (cached)."""
        key = (start, tip, base_tip)
        if key not in self._shipped_cache:
            ancestor = run(
                ["git", "merge-base", "--is-ancestor", tip, base_tip],
                cwd=self.repo_root,
                check=False,
            )
            found = ancestor.returncode == 0 or self._same_patch(start, tip, base_tip)
            self._shipped_cache[key] = found
        return self._shipped_cache[key]

    def _same_patch(self, start: str, tip: str, base_tip: str) -> bool:
        """The base since ``start`` has the branch's whole diff as one commit (squash), or has
        every branch commit's patch (rebase)."""
        start = start or self._git("merge-base", tip, base_tip, check=False)
        if not start:
            return False
        on_base = self._patch_ids("log", "-p", *DIFF_FLAGS, f"{start}..{base_tip}")
        if not on_base:
            return False
        if self._patch_ids("diff", *DIFF_FLAGS, start, tip) & on_base:
            return True
        own = self._patch_ids("log", "-p", *DIFF_FLAGS, f"{start}..{tip}")
        return bool(own) and own <= on_base

    def _patch_ids(self, *args: str) -> set[str]:
        """Stable patch-ids of what ``git <args>`` prints (read as bytes: diffs may be binary)."""
        patches = self._bytes(["git", *args])
        if not patches.strip():
            return set()
        ids = self._bytes(["git", "patch-id", "--stable"], patches)
        return {line.split()[0].decode() for line in ids.splitlines() if line.strip()}

    def _bytes(self, argv: list[str], feed: bytes | None = None) -> bytes:
        proc = subprocess.run(
            argv,
            cwd=self.repo_root,
            env=clean_env(),
            input=feed,
            stdin=subprocess.DEVNULL if feed is None else None,
            capture_output=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            reason = proc.stderr.decode(errors="replace").strip().splitlines() or ["failed"]
            raise ChumpError(f"{' '.join(argv[:3])}: {reason[-1]}")
        return proc.stdout


def _factory(settings: Settings) -> GitProvider:
    gate = parse_gate(settings.merge_gate)
    backlog = _inside(settings) if settings.backlog_source == "yaml" else None
    provider = GitProvider(
        settings.repo_root,
        settings.base_ref,
        gate,
        settings.bot_identity,
        backlog,
        settings.status_aliases,
    )
    if gate is not None and not provider.remote and provider.head() == provider.base_branch:
        raise UsageError(
            f"{SECTION} cannot move {provider.base_branch}: it is checked out in "
            f"{settings.repo_root} (check out another branch, or use a remote base_ref)"
        )
    return provider


def _inside(settings: Settings) -> str | None:
    """The backlog's path relative to the repository (None when it lies outside it)."""
    try:
        path = settings.backlog_path.resolve().relative_to(settings.repo_root.resolve())
    except ValueError:
        return None
    return path.as_posix()


@hookimpl
def chump_register_pr_providers(register: Register) -> None:
    register("git", _factory)
