"""A scripted agent that only commits: the merge gate, not the agent, lands its work.

Reads the prompt on stdin (exits 5 when it does not name the gap), writes ``<GAP-ID>.txt``
in its worktree and commits it on its branch; nothing is pushed.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main() -> None:
    gap_id = os.environ["CHUMP_GAP_ID"]
    if gap_id not in sys.stdin.read():
        print("ERROR: prompt does not name my gap", file=sys.stderr)
        sys.exit(5)
    with open(f"{gap_id}.txt", "w", encoding="utf-8") as fh:
        fh.write(f"{gap_id} done by commit_only\n")
    subprocess.run(["git", "add", f"{gap_id}.txt"], check=True)
    subprocess.run(["git", "commit", "--quiet", "-m", f"{gap_id}: the work"], check=True)
    print(f"committed {gap_id}", flush=True)


if __name__ == "__main__":
    main()
