"""What one Ray job runs on a cluster node: the gap's workspace, the agent, the push.

The ``ray`` spawner ships this file, a copy of :mod:`pytest_chump.core.supervisor` and a
``spec.json`` in the job's working directory, and Ray runs ``python3 -S ray_job.py
spec.json`` there. Like the supervisor it imports nothing but the standard library (and the
supervisor), so a node needs no chump installed: git, the agent's CLI and Ray's own Python.

The steps, each told in the job's log as a runner line (``=== chump ... ===``):

1. A per-node cache of the repository, a bare clone of its remote (``cache_dir``, one per
   remote URL), fetched under a file lock so two jobs on one node never fetch at once.
2. A worktree of the cache on the gap's branch: at the remote's copy of that branch when it
   has one (a later attempt goes on from the earlier one's work, as a local dispatch reuses
   its branch), else at the base commit the orchestrator resolved (a SHA, never a path).
3. The repository's ignored files the orchestrator included, then ``after_create`` and
   ``before_run`` set-up commands, as locally.
4. The agent, with the prompt on stdin and exactly the environment the spec gives on top of
   the node's. Its stdout and stderr reach the job's log line by line with every secret value
   and token shape masked first; stderr lines carry a ``[stderr] `` prefix so the orchestrator
   can keep the two apart. SIGTERM (``ray job stop``) is passed on to the agent once.
5. ``after_run``; uncommitted work is committed (never lost); the branch is pushed to the
   remote when it moved; ``before_remove``; the worktree is removed. The job exits with the
   agent's status (128 + N for signal N), or 1 when the agent succeeded but the push failed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_chump.core import supervisor as sup
else:
    try:  # on a node: the copy shipped next to this file, of the orchestrator's own version
        import supervisor as sup
    except ImportError:  # imported from the package (tests, the spawner)
        from pytest_chump.core import supervisor as sup

WORKTREE_SLOT = "@CHUMP_WORKTREE@"  # in the agent's argv: the worktree's path on the node
PROMPT_SLOT = "@CHUMP_PROMPT_FILE@"  # in the agent's argv: the prompt file's path on the node
PROMPT_NAME = "prompt.md"  # the prompt, in the job's working directory
STDERR_PREFIX = b"[stderr] "
RESULT_EVENT = "ray-job"  # the runner line that ends the log: ``ray-job: {json}``
GIT_TIMEOUT = 1800.0
SETUP_STEPS = ("after_create", "before_run", "after_run", "before_remove")


class JobFailed(Exception):
    """A step before the agent failed: the job ends with status 1 and this one line."""


class Out:
    """The job's log (its stdout): writes of whole lines, each with an optional prefix."""

    def __init__(self, prefix: bytes = b"", limit: int = sup.LONG_LINE) -> None:
        self.prefix, self.limit = prefix, limit

    def write(self, data: bytes) -> None:
        if self.prefix:
            data = b"".join(self.prefix + line + b"\n" for line in data.splitlines())
        with contextlib.suppress(OSError):
            os.write(1, data)


_masks: list[sup.Masker] = []  # the job's, once its spec is read


def say(event: str) -> None:
    """A runner line in the job's log, masked like the agent's output (git's errors may
    quote a remote URL with its credentials)."""
    line = sup.mark_line(event)
    Out().write(_masks[0](line) if _masks else line)


def git(*args: str, cwd: Path | str, env: Mapping[str, str] | None = None) -> str:
    """Run git; its stdout, or ``JobFailed`` with git's last error line."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()] or ["failed"]
        said = next(
            (ln for ln in reversed(lines) if ln.startswith(("fatal:", "error:"))), lines[-1]
        )
        raise JobFailed(f"git {args[0]}: {said}")
    return proc.stdout


def cache_of(spec: Mapping[str, Any]) -> Path:
    """The node's bare clone of the remote: one per URL under ``cache_dir``."""
    root = Path(os.path.expanduser(str(spec["cache_dir"])))
    digest = hashlib.sha256(str(spec["remote_url"]).encode()).hexdigest()[:16]
    return root / f"{digest}.git"


@contextlib.contextmanager
def locked(path: Path) -> Any:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


def fetch(spec: Mapping[str, Any], cache: Path, env: Mapping[str, str]) -> str:
    """Clone or fetch the cache; the commit the branch starts at (the remote's copy of the
    branch when there is one, else the base commit).

    The cache is a bare clone whose ``origin`` keeps remote-tracking refs, so an agent's
    worktree looks like any clone's (``origin/main``, ``git push origin``)."""
    url, branch, base = str(spec["remote_url"]), str(spec["branch"]), str(spec["base_sha"])
    with locked(cache.with_suffix(".lock")):
        if not (cache / "HEAD").exists():  # made whole, then renamed: never half a cache
            say(f"clone: {url}")
            shutil.rmtree(cache, ignore_errors=True)
            cache.parent.mkdir(parents=True, exist_ok=True)
            fresh = cache.with_name(cache.name + ".new")
            shutil.rmtree(fresh, ignore_errors=True)
            git("clone", "--bare", "--quiet", url, str(fresh), cwd=cache.parent, env=env)
            refspec = "+refs/heads/*:refs/remotes/origin/*"
            git("config", "remote.origin.fetch", refspec, cwd=fresh, env=env)
            fresh.rename(cache)
        git("remote", "set-url", "origin", url, cwd=cache, env=env)
        git("fetch", "--quiet", "--prune", "origin", cwd=cache, env=env)
        present = subprocess.run(
            ["git", "cat-file", "-e", f"{base}^{{commit}}"], cwd=cache, capture_output=True
        )
        if present.returncode != 0:
            raise JobFailed(f"base commit {base} is not on {url}: push it first")
        ref = f"refs/remotes/origin/{branch}"
        tip = git("for-each-ref", "--format=%(objectname)", ref, cwd=cache, env=env)
    return tip.strip() or base


def add_worktree(spec: Mapping[str, Any], cache: Path, start: str, env: Mapping[str, str]) -> Path:
    """A fresh worktree of the cache for this job, on the gap's branch at ``start``.

    A job killed before it pushed leaves its worktree and branch in the cache: the worktree
    is replaced (``--force``), and commits of the branch the remote lacks are kept on
    ``refs/chump/rescued/<branch>-<sha>`` before the branch moves to ``start``."""
    tree = cache.parent / "worktrees" / str(spec["job_id"])
    branch = str(spec["branch"])
    with locked(cache.with_suffix(".lock")):
        git("worktree", "prune", cwd=cache, env=env)
        if tree.exists():
            shutil.rmtree(tree)
        for stale in holders(cache, branch, env):  # a killed job's: save, then remove it
            with contextlib.suppress(JobFailed):
                save(stale, str(spec["gap_id"]), env)
            with contextlib.suppress(JobFailed):
                git("worktree", "remove", "--force", str(stale), cwd=cache, env=env)
        old = git("for-each-ref", "--format=%(objectname)", f"refs/heads/{branch}", cwd=cache)
        old = old.strip()
        if old and old != start and not is_ancestor(cache, old, start):
            git("update-ref", f"refs/chump/rescued/{branch}-{old[:12]}", old, cwd=cache, env=env)
            say(f"rescued: {branch} at {old} (a job stopped before it pushed)")
        add = ["worktree", "add", "--quiet", "--force", "-B", branch, str(tree), start]
        git(*add, cwd=cache, env=env)
    return tree


def holders(cache: Path, branch: str, env: Mapping[str, str]) -> list[Path]:
    """Worktrees of the cache that have ``branch`` checked out."""
    listing = git("worktree", "list", "--porcelain", cwd=cache, env=env)
    found, tree = [], None
    for line in listing.splitlines():
        if line.startswith("worktree "):
            tree = Path(line.removeprefix("worktree "))
        elif line == f"branch refs/heads/{branch}" and tree is not None:
            found.append(tree)
    return found


def save(tree: Path, gap_id: str, env: Mapping[str, str]) -> bool:
    """Commit what is uncommitted in ``tree``; whether a commit was made."""
    git("add", "-A", cwd=tree, env=env)
    if not git("status", "--porcelain", cwd=tree, env=env).strip():
        return False
    message = f"chump: save uncommitted work of {gap_id}"
    git("commit", "--quiet", "--no-verify", "-m", message, cwd=tree, env=env)
    return True


def is_ancestor(repo: Path, older: str, newer: str) -> bool:
    check = ["git", "merge-base", "--is-ancestor", older, newer]
    return subprocess.run(check, cwd=repo, capture_output=True, check=False).returncode == 0


def remove_worktree(cache: Path, tree: Path, env: Mapping[str, str]) -> None:
    with locked(cache.with_suffix(".lock")), contextlib.suppress(JobFailed, OSError):
        git("worktree", "remove", "--force", str(tree), cwd=cache, env=env)
    shutil.rmtree(tree, ignore_errors=True)


def copy_includes(source: Path, tree: Path) -> None:
    """The ignored files the orchestrator included (shipped under ``includes/``)."""
    if not source.is_dir():
        return
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.is_symlink():
            target = tree / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            shutil.copy2(path, target)


def run_step(
    spec: Mapping[str, Any], step: str, tree: Path, env: Mapping[str, str], mask: Any
) -> str:
    """Run set-up step ``step`` when configured; "" or why it failed."""
    argv = (spec.get("setup") or {}).get(step)
    if not argv:
        return ""
    say(f"{step}: {' '.join(argv)}")
    timeout = float((spec.get("setup") or {}).get("timeout", 600.0))
    out, err = sup.Stream(-1, Out(), mask), sup.Stream(-1, Out(STDERR_PREFIX), mask)
    try:
        proc = subprocess.run(
            argv,
            cwd=tree,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{step}: {type(exc).__name__}: {exc}"
    out.feed(proc.stdout)
    out.finish()
    err.feed(proc.stderr)
    err.finish()
    return f"{step}: exit status {proc.returncode}" if proc.returncode else ""


def run_agent(spec: Mapping[str, Any], tree: Path, env: Mapping[str, str], mask: Any) -> int:
    """The agent in ``tree`` with the prompt on stdin, its output masked into the job's log."""
    prompt_file = str(Path(PROMPT_NAME).resolve())
    argv = [
        str(a).replace(WORKTREE_SLOT, str(tree)).replace(PROMPT_SLOT, prompt_file)
        for a in spec["argv"]
    ]
    resolved = shutil.which(argv[0], path=env.get("PATH", os.defpath))
    if resolved is None:
        say(f"cannot start: {argv[0]}: command not found on this node")
        return 127
    prompt = spec.get("prompt")
    try:
        agent = subprocess.Popen(
            [resolved, *argv[1:]],
            cwd=tree,
            env=dict(env),
            stdin=subprocess.PIPE if prompt is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            close_fds=True,
            start_new_session=True,  # its own group: a stop reaches everything it started
            preexec_fn=die_with_parent,
        )
    except OSError as exc:
        say(f"cannot start: {exc.strerror or exc}")
        return 127
    passed: list[int] = []

    def pass_on(signum: int, frame: object = None) -> None:
        if signum not in passed:  # once: a second TERM must not cut the save and push short
            passed.append(signum)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(agent.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, pass_on)
    say(f"start: {argv[0]} pid {agent.pid} in {tree}")
    if prompt is not None:  # on a thread: a long prompt must not block the pumping
        data = str(prompt).encode("utf-8")
        threading.Thread(target=sup.feed_prompt, args=(agent, data), daemon=True).start()
    assert agent.stdout is not None
    assert agent.stderr is not None
    streams = [
        sup.Stream(agent.stdout.fileno(), Out(), mask),
        sup.Stream(agent.stderr.fileno(), Out(STDERR_PREFIX), mask),
    ]
    status = sup.pump(agent, streams)
    say(f"exit: status {status}")
    return status if status >= 0 else 128 - status


def die_with_parent() -> None:
    """In the agent, before it runs: SIGKILL when this job dies (Ray kills only the job's
    own process group when its supervisor or node dies; the agent leads a group of its own)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def push(spec: Mapping[str, Any], tree: Path, start: str, env: Mapping[str, str]) -> str:
    """Commit leftover work, then push the branch when it moved; the pushed commit or ""."""
    if save(tree, str(spec["gap_id"]), env):
        say("saved: uncommitted work committed")
    head = git("rev-parse", "HEAD", cwd=tree, env=env).strip()
    if head == start:  # nothing new: the remote has it already (or there is no work)
        return ""
    branch = str(spec["branch"])
    git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=tree, env=env)
    say(f"pushed: {branch} at {head}")
    return head


def job_env(spec: Mapping[str, Any]) -> dict[str, str]:
    """The node's environment without git's hook variables, plus what the spec carries."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**base, **{str(k): str(v) for k, v in (spec.get("env") or {}).items()}}


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print("usage: ray_job.py spec.json", file=sys.stderr)
        return 2
    spec_path = Path(argv[1])
    spec: dict[str, Any] = json.loads(spec_path.read_text(encoding="utf-8"))
    spec_path.unlink(missing_ok=True)  # its secrets stay on the node no longer than needed
    env = job_env(spec)
    named = re.compile(str(spec.get("secret_name_pattern") or "(?!)"), re.IGNORECASE)
    own = [v for k, v in env.items() if named.search(k)]  # the node's own secrets too
    secrets = [*spec.get("secrets", []), *own]
    mask = sup.Masker(secrets, [tuple(r) for r in spec.get("rules", [])])
    _masks.append(mask)
    cache = cache_of(spec)
    say(f"job: {spec['job_id']} for {spec['gap_id']} on {os.uname().nodename}")
    tree: Path | None = None
    status, pushed, problem = 1, "", ""
    try:
        start = fetch(spec, cache, env)
        tree = add_worktree(spec, cache, start, env)
        env["CHUMP_WORKTREE"] = str(tree)
        copy_includes(spec_path.parent / "includes", tree)
        for step in ("after_create", "before_run"):
            failed = run_step(spec, step, tree, env, mask)
            if failed:
                raise JobFailed(f"setup failed: {failed}")
        status = run_agent(spec, tree, env, mask)
        Path(PROMPT_NAME).unlink(missing_ok=True)
        for step in ("after_run",):
            if failed := run_step(spec, step, tree, env, mask):
                say(f"warning: {failed} (ignored)")
        try:
            pushed = push(spec, tree, start, env)
        except JobFailed as exc:
            problem = f"push failed: {exc}"
            status = status or 1
    except JobFailed as exc:
        problem = str(exc)
    finally:
        if tree is not None:
            if failed := run_step(spec, "before_remove", tree, env, mask):
                say(f"warning: {failed} (ignored)")
            remove_worktree(cache, tree, env)
    if problem:
        say(f"error: {problem}")
    result = {"exit": status, "pushed": pushed, "error": problem}
    say(f"{RESULT_EVENT}: {json.dumps(result)}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
