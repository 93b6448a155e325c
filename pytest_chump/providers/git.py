"""The ``git`` provider: an offline forge where "merged" means the work reached the base branch.

A branch is MERGED when it has commits beyond where it started and its tip is an ancestor
of the base ref (after fetching the base's remote, if any). A branch pushed to the remote
but not yet merged counts as an OPEN pull request. No GitHub needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_chump import hookimpl
from pytest_chump.config import Settings
from pytest_chump.contracts import PrStatus, Register, Watch
from pytest_chump.errors import ChumpError
from pytest_chump.proc import run


class GitProvider:
    name = "git"

    def __init__(self, repo_root: Path, base_ref: str) -> None:
        self.repo_root = repo_root
        self.base_ref = base_ref
        remote, _, _ = base_ref.partition("/")
        self.remote = remote if remote in self._remotes() else ""
        self.calls = 0

    def _git(self, *args: str, check: bool = True) -> str:
        return run(["git", *args], cwd=self.repo_root, check=check).stdout.strip()

    def _remotes(self) -> list[str]:
        return self._git("remote").split()

    def _sha(self, ref: str) -> str:
        return self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)

    def _is_ancestor(self, sha: str, ref: str) -> bool:
        proc = run(
            ["git", "merge-base", "--is-ancestor", sha, ref], cwd=self.repo_root, check=False
        )
        return proc.returncode == 0

    def poll(self, watches: Sequence[Watch]) -> Mapping[str, PrStatus]:
        """One fetch for all branches, then local ref checks per branch."""
        self.calls += 1
        if self.remote:
            self._git("fetch", "--quiet", "--prune", self.remote)
        if not self._sha(self.base_ref):
            raise ChumpError(f"git provider: base ref {self.base_ref!r} not found")
        result: dict[str, PrStatus] = {}
        for watch in watches:
            status = self._status(watch)
            if status is not None:
                result[watch.branch] = status
        return result

    def _status(self, watch: Watch) -> PrStatus | None:
        pushed = self._sha(f"refs/remotes/{self.remote}/{watch.branch}") if self.remote else ""
        tip = pushed or self._sha(f"refs/heads/{watch.branch}")
        if not tip or tip == watch.base_sha:
            return None
        if self._is_ancestor(tip, self.base_ref):
            return PrStatus(None, "MERGED")
        return PrStatus(None, "OPEN") if pushed else None


def _factory(settings: Settings) -> GitProvider:
    return GitProvider(settings.repo_root, settings.base_ref)


@hookimpl
def chump_register_pr_providers(register: Register) -> None:
    register("git", _factory)
