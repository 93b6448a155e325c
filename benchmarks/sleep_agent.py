"""The stand-in agent of ``bench_ray``: sleeps a fixed time, then commits and lands its work.

``python sleep_agent.py SECONDS``, run in its gap's worktree (local or on a Ray node) with the
prompt on stdin. It reads the prompt, prints ``agent-start <unix time>``, sleeps ``SECONDS``
(the agent's thinking, the same for every dispatch), writes ``<GAP-ID>.txt``, commits, then
rebases onto ``origin/main`` and pushes to ``main``, again when another agent pushed first;
last it prints ``agent-end <unix time>``. The two stamps let the benchmark split a dispatch's
overhead into what comes before the agent runs and what comes after it exits.

Standard library only: on a Ray node it runs with no chump installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

IDENTITY = ("-c", "user.name=bench", "-c", "user.email=bench@example.invalid")


def git(*args: str) -> int:
    """``git args`` in the worktree, quietly; its exit status."""
    return subprocess.run(["git", *IDENTITY, *args], capture_output=True, check=False).returncode


def land(gap_id: str) -> bool:
    """Commit ``<gap_id>.txt`` and push it to ``origin/main``, rebasing as often as another
    agent got there first; whether it landed."""
    with open(f"{gap_id}.txt", "w", encoding="utf-8") as fh:
        fh.write(f"work for {gap_id}\n")
    git("add", f"{gap_id}.txt")
    git("commit", "--quiet", "-m", f"{gap_id}: do the work")
    for _ in range(50):
        git("fetch", "--quiet", "origin", "main")
        if git("rebase", "--quiet", "origin/main") != 0:
            git("rebase", "--abort")
            continue
        if git("push", "--quiet", "origin", "HEAD:main") == 0:
            return True
    return False


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    gap_id = os.environ["CHUMP_GAP_ID"]
    sys.stdin.read()  # the prompt: read as a real agent would, then ignored
    print(f"agent-start {time.time():.3f}", flush=True)
    time.sleep(seconds)
    landed = land(gap_id)
    print(f"agent-end {time.time():.3f}", flush=True)
    if not landed:
        print(f"ERROR: could not push {gap_id}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
