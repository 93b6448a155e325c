"""Worktree set-up the repository asks for: commands around an agent's run, and git-ignored
files (``.env``) copied into each new worktree.

``[tool.chump.worktree]``: ``after_create`` (once per worktree new to a dispatch: created, or
taken from the warm pool at a new branch), ``before_run``
(before every agent), ``after_run`` and ``before_remove`` (at teardown) — each an argv list
run in the worktree with the agent's environment, within ``timeout`` (default 10m; the whole
process group is stopped when it runs over). A failing ``after_create`` or ``before_run`` fails
the dispatch (cause ``setup-failed``) and undoes it; the other two only warn. Output goes to
``.chump/logs/<slug>.setup.log``, line by line with secrets masked (the agent's environment
holds them) and within ``log_max_bytes``; the last lines say why in the failure.
``worktree_include``: globs, relative to the repository, of git-ignored files copied into each
new worktree, replacing a pooled worktree's older copies (symbolic links and paths leaving the
repository are never followed, in the repository or in the worktree; a file git does not ignore
is not copied, or a saved worktree would commit it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from pytest_chump.core.config_values import positive_duration
from pytest_chump.core.errors import ChumpError, UsageError
from pytest_chump.core.redact import known_secrets, printable, redact, redaction_rules
from pytest_chump.core.run import clean_env
from pytest_chump.core.supervisor import CappedLog, Masker, Stream

SECTION = "[tool.chump.worktree]"
STEPS = ("after_create", "before_run", "after_run", "before_remove")
TAIL_LINES, TAIL_CHARS = 5, 400
READER_JOIN = 0.5  # seconds to drain a step's output after it ended (a service may hold it)


class SetupFailed(ChumpError):
    """A set-up command failed: the dispatch ends with cause ``setup-failed``."""


@dataclass(frozen=True)
class WorktreeSetup:
    """The repository's set-up steps and includes (nothing configured: every call is a no-op)."""

    repo_root: Path
    steps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    timeout: float = 600.0
    include: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()  # masked in the log, with the environment's own
    max_bytes: int = 64 << 20  # the log and its rotated copy together

    @classmethod
    def from_settings(
        cls,
        repo_root: Path,
        table: Mapping[str, Any],
        include: Sequence[str],
        secrets: Sequence[str] = (),
        max_bytes: int = 64 << 20,
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
        return cls(repo_root, steps, timeout, tuple(include), tuple(secrets), max_bytes)

    def prepare(self, worktree: Path, created: bool, env: Mapping[str, str], log: Path) -> None:
        """Before the agent: copy includes and run ``after_create`` into a worktree new to this
        dispatch (``created``: made, or taken from the pool), then ``before_run``;
        ``SetupFailed`` when a command fails."""
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
        secrets = known_secrets(self.secrets, env=env)
        copy = _MaskedCopy(log, secrets, self.max_bytes)
        copy.header(f"=== chump {step}: {' '.join(argv)} ===")
        problem = _run(argv, worktree, env, self.timeout, copy)
        if problem:
            kind = "failed" if required else "failed (ignored)"
            raise SetupFailed(f"{step} {kind}: {problem}{copy.tail()}")

    def copy_includes(self, worktree: Path) -> list[Path]:
        """Copy the git-ignored files ``include`` matches into ``worktree``; what was copied.

        Only ignored files: anything else would end up committed on the branch (a merge gate
        saves what an agent left behind) — and tracked files are in the worktree already. An
        older copy (a pooled worktree's) is replaced; nothing is written through a symbolic
        link an earlier agent may have left in the worktree.
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
            inside = [p for p in target.parents if p != worktree and p.is_relative_to(worktree)]
            if any(p.is_symlink() for p in inside) or (target.is_dir() and not target.is_symlink()):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)  # an older copy, or a link: never written through
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


class _MaskedCopy:
    """Copies a step's output into the set-up log as the agent's supervisor copies an
    agent's (the same masking: secret values also JSON-escaped, token shapes, private-key
    blocks; the same cap), and keeps the last lines for the failure message. It reads to
    the end of the pipe, even after the step returned: a service the step left running must
    never be killed by a closed pipe."""

    def __init__(self, log: Path, secrets: Sequence[str], max_bytes: int) -> None:
        self.log = CappedLog(str(log), max_bytes)
        self.mask = Masker(secrets, redaction_rules())
        self.last: deque[bytes] = deque(maxlen=TAIL_LINES)
        self.partial = b""  # the end of the output that is not a whole line yet

    def header(self, line: str) -> None:
        self.log.write(self.mask(line.encode()) + b"\n")

    def pump(self, stream: IO[bytes]) -> None:
        copy = Stream(stream.fileno(), self.log, self.mask)
        with contextlib.suppress(OSError, ValueError), stream:
            for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
                copy.feed(chunk)
                *lines, self.partial = (self.partial + chunk).split(b"\n")
                self.last.extend(line for line in lines[-TAIL_LINES:] if line.strip())
            copy.finish()
            if self.partial.strip():
                self.last.append(self.partial)
        self.log.close()

    def tail(self) -> str:
        """``: `` and the step's last lines (masked, on one line, bounded)."""
        lines = [self.mask(line).decode("utf-8", "replace").strip() for line in self.last]
        text = printable(redact(" | ".join(lines)))
        if len(text) > TAIL_CHARS:
            text = "..." + text[-(TAIL_CHARS - 3) :]
        return f": {text}" if text else ""


def _run(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float, copy: _MaskedCopy
) -> str:
    """"" when ``argv`` succeeded, else why not; its process group is stopped on timeout."""
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return f"{argv[0]}: cannot run: {exc.strerror or exc}"
    assert proc.stdout is not None
    reader = threading.Thread(target=copy.pump, args=(proc.stdout,), daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout)
        problem = "" if code == 0 else f"exit status {code}"
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        problem = f"timed out after {timeout:g}s"
    reader.join(READER_JOIN)  # a service the step left running may hold the pipe: not long
    return problem
