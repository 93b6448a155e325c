"""The local merge gate of the ``git`` provider: check a finished branch, then merge it into base.

Checks run in worker threads so a poll never waits on them; merges are serialized by a thread
lock plus an flock on ``.chump/merge-gate.lock``, so two orchestrators never move the base at once.
Everything here that takes the repository lock (fetch, temporary worktree, push) runs on those
threads, never on the loop's: a large worktree being made delays the gate's merge, not the loop.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from pytest_chump.core.crashpoints import crash_point
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.protocols import PrStatus
from pytest_chump.core.redact import redact
from pytest_chump.core.remote_refs import fetch, own_ref, resolve, users_ref
from pytest_chump.core.run import clean_env, run
from pytest_chump.state.locks import fetch_lock, file_lock, repo_lock, state_dir

PENDING = PrStatus(None, "OPEN", checks="pending")
TAIL_LINES, DETAIL_CHARS, TRIES = 10, 500, 3
NO_HOOKS = ("-c", "core.hooksPath=/dev/null")  # the repo's hooks (chump's post-merge too) stay out


def closed(cause: str, detail: str) -> PrStatus:
    """A pull request the gate turned down: ``decide`` makes it ``ci_failed`` with ``detail``."""
    return PrStatus(None, "CLOSED", checks="failing", cause=cause, detail=detail)


def tail(output: str) -> str:
    """The last non-empty lines of ``output`` joined with `` | ``, redacted, end kept if long."""
    lines = [line.strip() for line in output.splitlines() if line.strip()][-TAIL_LINES:]
    text = redact(" | ".join(lines))
    return text if len(text) <= DETAIL_CHARS else "..." + text[-(DETAIL_CHARS - 3) :]


def run_check(
    command: tuple[str, ...], cwd: Path, timeout: float, log: Path | None = None
) -> PrStatus | None:
    """Run the check in ``cwd``: None when it passed, else the CLOSED status saying why in one
    line (the failing test ids when the output names them); the whole output goes to ``log``."""
    try:
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: a timeout stops its children too
        )
    except OSError as exc:
        return closed("gate-error", f"check could not start: {exc}")
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return closed("tests-failed", f"check timed out after {timeout:g}s")
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(redact(output), encoding="utf-8")
    if proc.returncode == 0:
        return None
    return closed("tests-failed", failure_summary(output, proc.returncode))


_FAILED_TEST = re.compile(r"^(?:FAILED|ERROR) ([\w./\\-]+(?:::[^\s]+)?)", re.M)
SHOWN_TESTS = 5


def failure_summary(output: str, code: int) -> str:
    """One line: the failing test ids pytest names (``FAILED path::test``), else the tail."""
    ids = list(dict.fromkeys(_FAILED_TEST.findall(output)))
    if not ids:
        return f"check failed (exit {code}): {tail(output)}"
    more = f" (+{len(ids) - SHOWN_TESTS} more)" if len(ids) > SHOWN_TESTS else ""
    return f"tests failed: {', '.join(ids[:SHOWN_TESTS])}{more}"


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@contextmanager
def temp_worktree(repo_root: Path, commit: str) -> Iterator[Path]:
    """A private detached worktree at ``commit``, removed afterwards whatever happened in it."""
    holder = Path(tempfile.mkdtemp(prefix="chump-merge-"))
    tree = holder / "tree"
    add = ["git", *NO_HOOKS, "worktree", "add", "--quiet", "--detach", str(tree), commit]
    try:
        with repo_lock(repo_root):
            run(add, cwd=repo_root)
        yield tree
    finally:
        with repo_lock(repo_root):
            run(["git", "worktree", "remove", "--force", str(tree)], cwd=repo_root, check=False)
        shutil.rmtree(holder, ignore_errors=True)


def next_number(counter: Path) -> int:
    """Take the next synthetic PR number from ``counter`` (call it under the gate's file lock)."""
    text = counter.read_text(encoding="utf-8").strip() if counter.exists() else ""
    number = (int(text) if text.isdigit() else 0) + 1
    scratch = counter.with_name(counter.name + ".tmp")
    scratch.write_text(f"{number}\n", encoding="utf-8")
    os.replace(scratch, counter)  # a crash mid-write never leaves a truncated counter
    return number


@dataclass
class Merger:
    """Merges a checked tip into the base branch, one merge at a time across processes."""

    repo_root: Path
    remote: str  # "" when the base is a local branch
    branch: str
    mode: str
    identity: Mapping[str, str]
    record: Callable[[str, str], str] | None = None
    """(commit to publish, gap id) -> that commit, or a child marking the gap done."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _git(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = clean_env(None, **self.identity)
        return run(["git", *NO_HOOKS, *args], cwd=cwd or self.repo_root, env=env, check=False)

    def merge(self, tip: str, label: str, gap_id: str = "") -> PrStatus:
        """Put ``tip`` on the base; MERGED with the next synthetic number, or CLOSED with why."""
        state = state_dir(self.repo_root)
        with self._lock, file_lock(state / "merge-gate.lock"):
            problem = "no attempt made"
            for _ in range(TRIES):
                base = self._base_tip()
                if self._git("merge-base", "--is-ancestor", tip, base).returncode == 0:
                    return PrStatus(None, "MERGED", checks="passing")
                new = self._combine(base, tip, label)
                if isinstance(new, PrStatus):
                    return new
                if self.record is not None and gap_id:
                    new = self.record(new, gap_id)  # the gap marked done on top of the merge
                crash_point("gate.merged")
                problem = self._publish(new)
                crash_point("gate.published")
                if not problem:
                    number = next_number(state / "merge-gate-counter")
                    return PrStatus(number, "MERGED", checks="passing")
        return closed("merge-failed", f"could not update {self.branch}: {problem}")

    def _base_tip(self) -> str:
        """The base's commit: fetched just now into chump's namespace (the newer of that and
        the user's remote-tracking ref), or the local branch."""
        if not self.remote:
            return self._git("rev-parse", "--verify", f"refs/heads/{self.branch}").stdout.strip()
        with repo_lock(self.repo_root), fetch_lock(self.repo_root), suppress(ChumpError):
            fetch(self.repo_root, self.remote, [self.branch])  # failed: a stale push is refused
        return resolve(self.repo_root, users_ref(self.remote, self.branch))

    def _combine(self, base: str, tip: str, label: str) -> str | PrStatus:
        """The commit the base should become: ``tip`` itself (fast-forward) or a merge commit."""
        if self._git("merge-base", "--is-ancestor", base, tip).returncode == 0:
            return tip
        if self.mode == "ff":
            moved = f"not a fast-forward: {self.branch} moved since the branch started"
            return closed("merge-conflict", moved)
        message = f"Merge {label} (chump merge gate)"
        with temp_worktree(self.repo_root, base) as tree:
            merged = self._git("merge", "--no-ff", "--no-edit", "-m", message, tip, cwd=tree)
            if merged.returncode == 0:
                return self._git("rev-parse", "HEAD", cwd=tree).stdout.strip()
            files = self._git("diff", "--name-only", "--diff-filter=U", cwd=tree).stdout.split()
            self._git("merge", "--abort", cwd=tree)
        if files:
            return closed("merge-conflict", f"conflict with {self.branch} in {', '.join(files)}")
        return closed("merge-failed", tail(merged.stderr or merged.stdout))

    def _publish(self, new: str) -> str:
        """Push ``new`` to the base ("" when done, else why not); a local base is pushed to ``.``
        so git refuses to move it when it moved meanwhile or is checked out in a worktree.

        A remote is pushed to by its name, so its push URLs, URL rewrites and options apply
        and no credential reaches an argv; git then also updates the user's remote-tracking
        ref (once per merge; a lock held on it does not fail the push). chump's own copy is
        updated too."""
        target = f"{new}:refs/heads/{self.branch}"
        with repo_lock(self.repo_root):
            pushed = self._git("push", "--quiet", self.remote or ".", target)
            if pushed.returncode == 0 and self.remote:
                with fetch_lock(self.repo_root):  # chump's refs: one writer at a time
                    self._git("update-ref", own_ref(self.remote, self.branch), new)
        return "" if pushed.returncode == 0 else tail(pushed.stderr) or "push refused"


def _slug(branch: str) -> str:
    return branch.replace("/", "-")


FEEDBACK_LINES = 60


def gate_log(repo_root: Path, branch: str) -> Path:
    """Where the merge gate keeps the whole output of ``branch``'s last check."""
    return state_dir(repo_root) / "logs" / f"gate-{_slug(branch)}.log"


def gate_feedback(repo_root: Path, branch: str) -> str:
    """The end of ``branch``'s last check output (``FEEDBACK_LINES`` lines), for the next
    attempt's prompt; "" when there is none."""
    try:
        text = gate_log(repo_root, branch).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = text.rstrip("\n").splitlines()[-FEEDBACK_LINES:]
    return "The end of the check's output:\n" + "\n".join(lines) if lines else ""


@dataclass
class _Job:
    tip: str
    result: PrStatus | None = None  # None while the check or the merge runs


class MergeGate:
    """Runs check-then-merge jobs in worker threads; ``status`` only ever reads their state."""

    def __init__(
        self,
        command: tuple[str, ...],
        timeout: float,
        merger: Merger,
        done: Callable[[], None],
    ) -> None:
        self.command, self.timeout, self.merger, self._done = command, timeout, merger, done
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}

    def result(self, branch: str, tip: str) -> PrStatus | None:
        """The finished job's status for ``branch`` at ``tip``, if there is one."""
        with self._lock:
            job = self._jobs.get(branch)
        return job.result if job is not None and job.tip == tip else None

    def running(self, branch: str) -> bool:
        """Whether a check or merge of ``branch`` is under way (its verdict not yet known)."""
        with self._lock:
            job = self._jobs.get(branch)
        return job is not None and job.result is None

    def status(
        self, branch: str, tip: str, worktree: Path, label: str, gap_id: str = ""
    ) -> PrStatus:
        """The job's result, else pending — starting a job when none ran for this tip."""
        with self._lock:
            job = self._jobs.get(branch)
            if job is not None and (job.tip == tip or job.result is None):
                return job.result or PENDING
            job = self._jobs[branch] = _Job(tip)
        args = (branch, job, worktree, label, gap_id)
        threading.Thread(target=self._work, args=args, name=f"gate {branch}", daemon=True).start()
        return PENDING

    def _work(self, branch: str, job: _Job, worktree: Path, label: str, gap_id: str) -> None:
        try:
            log = gate_log(self.merger.repo_root, branch)
            verdict = run_check(self.command, worktree, self.timeout, log)
            with self._lock:
                wanted = self._jobs.get(branch) is job  # False once the branch was forgotten
            if verdict is None and wanted:
                verdict = self.merger.merge(job.tip, label, gap_id)
        except Exception as exc:  # a worker must always report, or its branch waits forever
            verdict = closed("gate-error", tail(f"{type(exc).__name__}: {exc}"))
        with self._lock:
            job.result = verdict or closed("gate-error", "no longer watched: not merged")
        self._done()

    def forget(self, keep: set[str]) -> None:
        """Drop the jobs of branches no longer watched; a running one then does not merge."""
        with self._lock:
            for branch in [b for b in self._jobs if b not in keep]:
                del self._jobs[branch]
