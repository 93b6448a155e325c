"""Worktree set-up the repository asks for: commands around an agent's run, and git-ignored
files (``.env``) copied into each new worktree.

``[tool.chump.worktree]``: ``after_create`` (once, when a worktree is new), ``before_run``
(before every agent), ``after_run`` and ``before_remove`` (at teardown) — each an argv list
run in the worktree with the agent's environment, within ``timeout`` (default 10m; the whole
process group is stopped when it runs over). A failing ``after_create`` or ``before_run`` fails
the dispatch (cause ``setup-failed``) and undoes it; the other two only warn. Output goes to
``.chump/logs/<slug>.setup.log``; the last lines (redacted) say why in the failure.
``worktree_include``: globs, relative to the repository, of git-ignored files copied into each
new worktree (symbolic links and paths leaving the repository are never followed; a file git
does not ignore is not copied, or a saved worktree would commit it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_chump.core.config_values import positive_duration
from pytest_chump.core.errors import ChumpError, UsageError
from pytest_chump.core.redact import printable, redact
from pytest_chump.core.run import clean_env

SECTION = "[tool.chump.worktree]"
STEPS = ("after_create", "before_run", "after_run", "before_remove")
TAIL_LINES, TAIL_CHARS = 5, 400


class SetupFailed(ChumpError):
    """A set-up command failed: the dispatch ends with cause ``setup-failed``."""


@dataclass(frozen=True)
class WorktreeSetup:
    """The repository's set-up steps and includes (nothing configured: every call is a no-op)."""

    repo_root: Path
    steps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    timeout: float = 600.0
    include: tuple[str, ...] = ()

    @classmethod
    def from_settings(
        cls, repo_root: Path, table: Mapping[str, Any], include: Sequence[str]
    ) -> WorktreeSetup:
        """Checked ``[tool.chump.worktree]`` and ``worktree_include``; bad entries are one line."""
        for key in table:
            if key not in (*STEPS, "timeout"):
                valid = ", ".join((*STEPS, "timeout"))
                raise UsageError(f"{SECTION} {key}: unknown key (valid: {valid})")
        steps = {step: _argv(step, table[step]) for step in STEPS if step in table}
        timeout = _timeout(table.get("timeout", "10m"))
        for pattern in include:
            parts = PurePosixPath(pattern).parts
            if not pattern or PurePosixPath(pattern).is_absolute() or ".." in parts:
                raise UsageError(f"worktree_include: {pattern!r} must stay inside the repository")
        return cls(repo_root, steps, timeout, tuple(include))

    def prepare(self, worktree: Path, created: bool, env: Mapping[str, str], log: Path) -> None:
        """Before the agent: copy includes and run ``after_create`` into a new worktree, then
        ``before_run``; ``SetupFailed`` when a command fails."""
        if created:
            self.copy_includes(worktree)
            self.run("after_create", worktree, env, log, required=True)
        self.run("before_run", worktree, env, log, required=True)

    def finish(self, worktree: Path, env: Mapping[str, str], log: Path) -> list[str]:
        """At teardown: ``after_run`` then ``before_remove``; the warnings they leave."""
        warnings = []
        for step in ("after_run", "before_remove"):
            try:
                self.run(step, worktree, env, log, required=False)
            except SetupFailed as exc:
                warnings.append(str(exc))
        return warnings

    def run(
        self, step: str, worktree: Path, env: Mapping[str, str], log: Path, required: bool
    ) -> None:
        """Run ``step`` in ``worktree`` (when configured); ``SetupFailed`` saying why."""
        argv = self.steps.get(step)
        if not argv or not worktree.is_dir():
            return
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"=== chump {step}: {' '.join(argv)} ===\n".encode())
            out.flush()
            start = out.tell()
            problem = _run(argv, worktree, env, self.timeout, out)
        if problem:
            kind = "failed" if required else "failed (ignored)"
            raise SetupFailed(f"{step} {kind}: {problem}{_tail(log, start)}")

    def copy_includes(self, worktree: Path) -> list[Path]:
        """Copy the git-ignored files ``include`` matches into ``worktree``; what was copied.

        Only ignored files: anything else would end up committed on the branch (a merge gate
        saves what an agent left behind) — and tracked files are in the worktree already.
        """
        root = self.repo_root.resolve()
        candidates = []
        for pattern in self.include:
            for source in sorted(root.glob(pattern)):
                relative = source.relative_to(root)
                linked = any(p.is_symlink() for p in [source, *source.parents] if p != root)
                private = ".git" in relative.parts or ".chump" in relative.parts
                if source.is_file() and not linked and not private:
                    candidates.append(relative)
        copied = []
        for relative in _ignored(root, candidates):
            target = worktree / relative
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / relative, target)
                copied.append(relative)
        return copied


def _ignored(root: Path, paths: Sequence[Path]) -> list[Path]:
    """Those of ``paths`` git ignores in ``root`` (one ``git check-ignore`` for all)."""
    if not paths:
        return []
    feed = "".join(f"{p.as_posix()}\0" for p in paths).encode()
    proc = subprocess.run(
        ["git", "check-ignore", "-z", "--stdin"],
        cwd=root,
        env=clean_env(),
        input=feed,
        capture_output=True,
        check=False,
    )
    ignored = {Path(name) for name in proc.stdout.decode(errors="replace").split("\0") if name}
    return [p for p in paths if p in ignored]


def _argv(step: str, value: object) -> tuple[str, ...]:
    if not (isinstance(value, list) and value and all(isinstance(a, str) for a in value)):
        raise UsageError(f"{SECTION} {step}: expected a list of strings, got {value!r}")
    return tuple(value)


def _timeout(raw: object) -> float:
    try:
        return positive_duration(raw)
    except ValueError as exc:
        raise UsageError(f"{SECTION} timeout: {exc}") from None


def _run(argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float, out: Any) -> str:
    """"" when ``argv`` succeeded, else why not; its process group is stopped on timeout."""
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return f"{argv[0]}: cannot run: {exc.strerror or exc}"
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"timed out after {timeout:g}s"
    return "" if code == 0 else f"exit status {code}"


def _tail(log: Path, start: int) -> str:
    """``: `` and the last lines the command printed (from ``start``), redacted and bounded."""
    try:
        with log.open("rb") as fh:
            fh.seek(start)
            lines = fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    body = [line.strip() for line in lines if line.strip()]
    text = printable(redact(" | ".join(body[-TAIL_LINES:])))
    if len(text) > TAIL_CHARS:
        text = "..." + text[-(TAIL_CHARS - 3) :]
    return f": {text}" if text else ""
