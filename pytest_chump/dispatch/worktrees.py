"""Git worktrees and branches for dispatches: create, reuse, save and remove them via GitPython.

Each call opens its own short-lived ``git.Repo`` (not thread-safe; leaks processes if kept open),
turns git failures into one-line ChumpErrors, and never throws away work committed on a branch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_chump.core.crashpoints import crash_point
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.remote_refs import resolve
from pytest_chump.core.run import clean_env

if TYPE_CHECKING:
    from git import Repo
    from git.exc import CommandError

_STDERR_PREFIX = "\n  stderr: '"  # how GitPython decorates the captured stderr of a failed command


@dataclass(frozen=True)
class Prepared:
    """What ``prepare`` did, so ``rollback`` can undo exactly that and nothing more."""

    worktree: Path
    branch: str
    created_branch: bool
    created_worktree: bool
    reused: str  # "" | "worktree" | "branch"
    start: str = ""  # commit a created branch started at; rollback deletes it only if still there
    pooled: bool = False  # taken from the warm pool (``dispatch/pool.py``): rollback parks it back


def _reason(exc: CommandError) -> str:
    """``git <subcommand>: <stderr line>`` for a failed git command.

    The line is the last ``fatal:``/``error:`` one, else the last non-empty one: git often ends
    with advice (``remove the file manually to continue.``) after the line that says what failed.
    """
    argv = [str(arg) for arg in exc.command[1:]]
    words = argv[:2] if argv[:1] == ["worktree"] else argv[:1]
    raw = str(exc.stderr).removeprefix(_STDERR_PREFIX).removesuffix("'")
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    lines = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
    detail = lines[-1] if lines else f"failed ({exc.status})"
    return " ".join(["git", *words]) + f": {detail}"


@contextmanager
def _open(path: Path) -> Iterator[Repo]:
    """A fresh ``Repo`` for one operation, closed afterwards; git failures become ChumpError."""
    import git

    try:
        with git.Repo(path) as repo:
            yield repo
    except git.CommandError as exc:
        raise ChumpError(_reason(exc)) from None
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ChumpError(f"{path} is not a git repository") from None


def _answer(command: Any, *args: str) -> bool:
    """Run a yes/no git command: True on exit 0, False on exit 1; anything else raises."""
    import git

    try:
        command(*args)
    except git.GitCommandError as exc:
        if exc.status == 1:
            return False
        raise
    return True


def _check_arg(kind: str, value: str) -> None:
    if not value or value.startswith("-"):
        raise ChumpError(f"{kind} {value!r} is not usable: empty or starts with '-'")


def _parse_worktrees(porcelain: str) -> list[tuple[Path, str | None]]:
    """(path, branch short name or None) per entry of ``git worktree list --porcelain``."""
    entries: list[tuple[Path, str | None]] = []
    for block in porcelain.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, _, value = line.partition(" ")
            fields[key] = value
        if "worktree" in fields:
            ref = fields.get("branch")
            branch = ref.removeprefix("refs/heads/") if ref else None
            entries.append((Path(fields["worktree"]).resolve(), branch))
    return entries


def _worktrees(repo: Repo) -> list[tuple[Path, str | None]]:
    """Every registered worktree, the main work tree first."""
    return _parse_worktrees(repo.git.worktree("list", "--porcelain"))


def _branch_exists(repo: Repo, branch: str) -> bool:
    return _answer(repo.git.show_ref, "--verify", "--quiet", f"refs/heads/{branch}")


def _count_beyond(repo: Repo, rev: str, base: str) -> int:
    return int(repo.git.rev_list("--count", rev, "--not", base, "--"))


def _commit_of(repo_root: Path, ref: str) -> str:
    """The commit base ref ``ref`` means (for ``origin/main``: the newer of chump's fetched
    copy and the user's, see ``core.remote_refs``), or ChumpError when there is none."""
    commit = resolve(repo_root, ref)
    if not commit:
        raise ChumpError(f"base ref {ref!r} not found; fetch it or set base_ref")
    return commit


def _clear_path(target: Path, shown: Path) -> None:
    """Remove an empty directory at ``target``; refuse anything else that is there."""
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        target.rmdir()
    elif target.exists() or target.is_symlink():
        raise ChumpError(f"{shown} exists and is not a git worktree; move it away")


def prepare(repo_root: Path, worktree: Path, branch: str, base_ref: str) -> Prepared:
    """Make ``worktree`` a checkout of ``branch``: reuse, continue an old branch, or create both."""
    _check_arg("branch", branch)
    _check_arg("base ref", base_ref)
    target = worktree.resolve()
    with _open(repo_root) as repo:
        repo.git.worktree("prune")
        registered = _worktrees(repo)
        on = dict(registered)
        if target in on:
            if target == registered[0][0]:
                raise ChumpError(f"{worktree} is the main work tree of {repo_root}")
            if on[target] != branch:
                now = on[target] or "a detached HEAD"
                raise ChumpError(f"worktree {worktree} is on {now}, not on {branch}")
            return Prepared(target, branch, False, False, "worktree")
        _clear_path(target, worktree)
        if _branch_exists(repo, branch):
            return _continue_branch(repo, target, branch, registered)
        return _create(repo, target, branch, _commit_of(repo_root, base_ref))


def _continue_branch(
    repo: Repo, target: Path, branch: str, registered: list[tuple[Path, str | None]]
) -> Prepared:
    holder = next((path for path, on in registered if on == branch), None)
    if holder is not None:
        raise ChumpError(f"branch {branch} is already checked out at {holder}")
    repo.git.worktree("add", str(target), branch)
    return Prepared(target, branch, False, True, "branch")


def _create(repo: Repo, target: Path, branch: str, start: str) -> Prepared:
    """``git worktree add -b`` at the base's commit ``start`` (a sha: the branch tracks nothing)."""
    import git

    prepared = Prepared(target, branch, True, True, "", start)
    try:
        repo.git.worktree("add", "-b", branch, str(target), start)
    except git.CommandError:
        _undo(repo, prepared)  # git may leave the new branch behind when checkout fails
        raise
    return prepared


def _undo(repo: Repo, prepared: Prepared) -> None:
    repo.git.worktree("prune")
    if prepared.created_worktree and prepared.worktree in dict(_worktrees(repo)[1:]):
        # created moments ago by prepare: only files written by the failed dispatch step are here
        repo.git.worktree("remove", "--force", str(prepared.worktree))
    branch = prepared.branch
    if not (prepared.created_branch and prepared.start and _branch_exists(repo, branch)):
        return
    if _count_beyond(repo, f"refs/heads/{branch}", prepared.start) == 0:
        repo.git.branch("-D", branch)


def rollback(repo_root: Path, prepared: Prepared) -> None:
    """Undo ``prepare`` after a later dispatch step failed; a reused branch keeps its commits."""
    with _open(repo_root) as repo:
        _undo(repo, prepared)


def save_work(worktree: Path, message: str, env: Mapping[str, str] | None = None) -> bool:
    """Commit every uncommitted change (untracked files too, not ignored ones); False if clean."""
    inline = clean_env(env) if env is not None else None
    with _open(worktree) as repo:
        if not repo.git.status("--porcelain", "--untracked-files=normal"):
            return False
        repo.git.add("-A", env=inline)
        repo.git.commit("--no-verify", "-m", message, env=inline)
    return True


def remove(
    repo_root: Path,
    worktree: Path,
    *,
    message: str,
    env: Mapping[str, str] | None = None,
    park: Callable[[Repo, Path], bool] | None = None,
) -> str:
    """Commit leftover changes, then remove the worktree (branch kept); "" or why it was kept.

    ``park``, given the repository and the saved worktree, may keep the worktree instead
    (the warm pool): True when it did, False to have it removed.
    """
    target = worktree.resolve()
    with _open(repo_root) as repo:
        repo.git.worktree("prune")
        if target not in dict(_worktrees(repo)[1:]):
            gone = not target.exists()
            return "" if gone else f"kept {worktree}: not a linked worktree of {repo_root}"
    try:
        save_work(target, message, env)
    except ChumpError as exc:
        return f"kept {worktree}: could not commit its changes: {exc}"
    crash_point("teardown.work-saved")
    try:
        with _open(repo_root) as repo:
            if park is None or not park(repo, target):
                repo.git.worktree("remove", str(target))
    except ChumpError as exc:
        return f"kept {worktree}: {exc}"
    return ""


def delete_branch_if_merged(repo_root: Path, branch: str, base_ref: str) -> bool:
    """Delete local ``branch`` only when its tip is already contained in ``base_ref``.

    A merged branch still checked out in a worktree is a ChumpError (remove the worktree first).
    """
    _check_arg("base ref", base_ref)
    with _open(repo_root) as repo:
        if not _branch_exists(repo, branch):
            return False
        base = _commit_of(repo_root, base_ref)
        if not _answer(repo.git.merge_base, "--is-ancestor", f"refs/heads/{branch}", base):
            return False
        repo.git.branch("-D", branch)
    return True


def list_worktrees(repo_root: Path) -> list[tuple[Path, str | None]]:
    """(path, branch or None when detached) of every linked worktree; the main one is left out."""
    with _open(repo_root) as repo:
        return _worktrees(repo)[1:]


def branch_exists(repo_root: Path, branch: str) -> bool:
    with _open(repo_root) as repo:
        return _branch_exists(repo, branch)


def has_commits_beyond(repo_root: Path, branch: str, base_ref: str) -> bool:
    """Whether ``branch`` has commits that ``base_ref`` does not contain."""
    _check_arg("base ref", base_ref)
    with _open(repo_root) as repo:
        return _count_beyond(repo, f"refs/heads/{branch}", _commit_of(repo_root, base_ref)) > 0
