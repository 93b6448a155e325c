"""The merge gate tells the backlog what shipped: when it merges a gap's branch, a commit on
top of the merge marks the gap done (``status``, ``closed_date``) in the file that holds it —
unless the agent did so already. Made on the merged result, so gaps merged one after another
never conflict over the backlog; the base never ships a gap that still says ``open``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pytest_chump.backlog import check_files, load_backlog
from pytest_chump.backlog.edit import Done, mark_done
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.run import clean_env, run
from pytest_chump.providers.merge_gate import NO_HOOKS, temp_worktree


@dataclass(frozen=True)
class BacklogRecorder:
    """Adds the "gap done" commit for the merge gate."""

    repo_root: Path
    backlog: str  # the backlog file or directory, relative to the repository
    identity: Mapping[str, str]
    status_aliases: Mapping[str, str] | None = None

    def __call__(self, commit: str, gap_id: str) -> str:
        """The commit to publish: ``commit``, or a child of it that marks ``gap_id`` done.

        Best effort: whatever goes wrong here, the checked work is merged as it is.
        """
        try:
            with temp_worktree(self.repo_root, commit) as tree:
                return self._record(tree, gap_id) or commit
        except (ChumpError, OSError, UnicodeDecodeError):
            return commit

    def _record(self, tree: Path, gap_id: str) -> str:
        """Commit the gap marked done in ``tree``; its sha, or "" when there is nothing to do
        (not in the backlog, done already, or laid out in a way the edit does not handle)."""
        path = self._file_of(tree, gap_id)
        if path is None:
            return ""
        data = path.read_bytes()
        gap = next((g for g in check_files([("f", data)]).gaps if g.id == gap_id), None)
        today = datetime.now(UTC).date().isoformat()
        edited = mark_done(data.decode("utf-8-sig"), gap, Done(today)) if gap else None
        if edited is None:
            return ""
        bom = "\ufeff" if data.startswith(b"\xef\xbb\xbf") else ""
        path.write_bytes((bom + edited).encode("utf-8"))
        message = f"chump: mark {gap_id} done (merged by the merge gate)"
        env = clean_env(None, **self.identity)
        git = ["git", *NO_HOOKS]
        run([*git, "add", "--", str(path)], cwd=tree, env=env)
        run([*git, "commit", "--quiet", "--no-verify", "-m", message], cwd=tree, env=env)
        return run(["git", "rev-parse", "HEAD"], cwd=tree).stdout.strip()

    def _file_of(self, tree: Path, gap_id: str) -> Path | None:
        """The file in ``tree`` where ``gap_id`` is still not done, if there is one."""
        location = tree / self.backlog
        if not location.exists():
            return None
        try:
            backlog = load_backlog(location, str(location), self.status_aliases)
        except ChumpError:
            return None
        gap = backlog.by_id().get(gap_id)
        if gap is None or gap.status == "done":
            return None
        return Path(gap.source) if location.is_dir() else location
