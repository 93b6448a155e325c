"""The agent of the real self-test: a small script run through the ``command`` spawner.

It reads its prompt on stdin (and checks it names its gap), writes the dummy file, commits
``<GAP-ID>.txt`` on its branch and lands it on origin's main (rebasing and retrying when
another agent pushed first) — what a coding agent does, minus the thinking.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ATTEMPTS = 30


def _git(*args: str) -> int:
    return subprocess.run(["git", *args], capture_output=True, check=False).returncode


def land(gap_id: str) -> bool:
    Path(f"{gap_id}.txt").write_text(f"work for {gap_id}\n", encoding="utf-8")
    _git("add", f"{gap_id}.txt")
    _git("commit", "--quiet", "-m", f"{gap_id}: synthetic work")
    for _ in range(ATTEMPTS):
        _git("fetch", "--quiet", "origin", "main")
        if _git("rebase", "--quiet", "origin/main") != 0:
            _git("rebase", "--abort")
            continue
        if _git("push", "--quiet", "origin", "HEAD:main") == 0:
            return True
    return False


def main() -> int:
    gap_id = os.environ["CHUMP_GAP_ID"]
    if gap_id not in sys.stdin.read():
        print(f"ERROR: the prompt does not name {gap_id}", file=sys.stderr)
        return 3
    scratch = Path(os.environ["CHUMP_SELFTEST_SCRATCH"])
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / gap_id).write_text("synthetic-shipped\n", encoding="utf-8")
    if not land(gap_id):
        print(f"ERROR: could not push {gap_id} to origin/main", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
