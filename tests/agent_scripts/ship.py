"""A scripted agent for end-to-end tests: does its gap's work, commits, and lands it on main.

Reads the prompt on stdin (and checks it names the gap), writes ``<GAP-ID>.txt`` in its
worktree, commits on its branch, then rebases onto origin/main and pushes to main, retrying
when another agent pushed first. Behaviour switches come from ``AGENT_MODE``:
``ship`` (default), ``sleep`` (never finishes; starts a grandchild that sleeps too),
``fail`` (exits 3 with an ERROR line on stderr), ``noop`` (exits 0 without committing),
``gate`` (waits until the file named by ``AGENT_GATE`` exists, then goes on in mode
``AGENT_AFTER_GATE``, default ``ship``), ``stubborn``
(ignores SIGTERM and sleeps: only SIGKILL stops it). ``AGENT_MODE_<GAP_ID>`` (dashes as
underscores) sets one gap's mode. ``gates`` waits for its own file ``<AGENT_GATES>/<GAP-ID>``,
removes it (a retry of the gap waits for a file of its own) and goes on in the mode written
in it (a test releases agents one by one, in its order).

``commit`` commits without pushing (a merge gate lands the work); ``break`` does too, but
its ``<GAP-ID>.txt`` says ``broken`` (a gate's check can fail on it; a later ``commit``
overwrites it). ``AGENT_PROMPT_END`` makes
it fail (exit 6) on a prompt that does not end with that text (cut short);
``AGENT_GRANDCHILD`` leaves a sleeping child behind in its process group.
``AGENT_SAY=<VAR>`` prints the value of ``$VAR`` on stderr first, as an agent leaking a
secret would.

With ``AGENT_JOURNAL`` (a directory) it keeps evidence for crash tests: its pid in
``pids``, each commit it made in ``commits`` (``<pid> <gap> <sha>``, again after a
rebase), and a line in ``double`` when another agent of the same gap was running at the
same time (an exclusive lock per gap, held for the agent's life).
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def land(gap_id: str) -> None:
    with open(f"{gap_id}.txt", "w", encoding="utf-8") as fh:
        fh.write(f"work for {gap_id}\n")
    git("add", f"{gap_id}.txt")
    git("commit", "--quiet", "-m", f"{gap_id}: do the work")
    journal("commits", f"{os.getpid()} {gap_id} {git('rev-parse', 'HEAD').stdout.strip()}")
    for _ in range(50):
        git("fetch", "--quiet", "origin", "main")
        if git("rebase", "--quiet", "origin/main").returncode != 0:
            git("rebase", "--abort")
            continue
        # journaled before the push: chump may stop this agent the moment its work lands
        journal("commits", f"{os.getpid()} {gap_id} {git('rev-parse', 'HEAD').stdout.strip()}")
        if git("push", "--quiet", "origin", "HEAD:main").returncode == 0:
            print(f"shipped {gap_id}", flush=True)
            return
    print(f"ERROR: could not push {gap_id}", file=sys.stderr)
    sys.exit(4)


def journal(name: str, line: str) -> None:
    folder = os.environ.get("AGENT_JOURNAL")
    if folder:
        with open(os.path.join(folder, name), "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def hold_gap_lock(gap_id: str) -> object:
    """Lock this gap for the agent's life; note a second agent of the gap running at once."""
    folder = os.environ.get("AGENT_JOURNAL")
    if not folder:
        return None
    journal("pids", f"{os.getpid()} {gap_id}")
    lock = open(os.path.join(folder, f"{gap_id}.lock"), "w")  # noqa: SIM115  (held until exit)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        journal("double", gap_id)
    return lock


def main() -> None:
    gap_id = os.environ["CHUMP_GAP_ID"]
    _lock = hold_gap_lock(gap_id)
    prompt = sys.stdin.read()
    if gap_id not in prompt:
        print("ERROR: prompt does not name my gap", file=sys.stderr)
        sys.exit(5)
    end = os.environ.get("AGENT_PROMPT_END")
    if end and not prompt.rstrip().endswith(end):
        print("ERROR: the prompt was cut short", file=sys.stderr)
        sys.exit(6)
    if os.environ.get("AGENT_GRANDCHILD"):  # left behind in the agent's process group
        sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
        subprocess.Popen(sleeper, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    said = os.environ.get("AGENT_SAY")  # the value of this variable, printed as an error
    if said:
        print(f"ERROR: leaking {os.environ.get(said, '')}", file=sys.stderr, flush=True)
    mode = os.environ.get("AGENT_MODE_" + gap_id.replace("-", "_")) or os.environ.get(
        "AGENT_MODE", "ship"
    )
    if mode == "gate":
        print(f"waiting at the gate for {gap_id}", flush=True)
        while not os.path.exists(os.environ["AGENT_GATE"]):
            time.sleep(0.02)
        mode = os.environ.get("AGENT_AFTER_GATE", "ship")
    if mode == "gates":  # its own gate: the file <AGENT_GATES>/<gap id> holds the mode to go on in
        gate = os.path.join(os.environ["AGENT_GATES"], gap_id)
        while not os.path.exists(gate):
            time.sleep(0.02)
        with open(gate, encoding="utf-8") as fh:
            mode = fh.read().strip() or "ship"
        os.remove(gate)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stubborn and ready", flush=True)
        time.sleep(3600)
    if mode == "sleep":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        print(f"grandchild {child.pid}", flush=True)
        time.sleep(3600)
    elif mode == "fail":
        print("ERROR: the build is broken beyond repair", file=sys.stderr)
        sys.exit(3)
    elif mode == "ship":
        land(gap_id)
    elif mode in ("commit", "break"):  # the merge gate lands it (or its check fails)
        with open(f"{gap_id}.txt", "w", encoding="utf-8") as fh:
            fh.write("broken\n" if mode == "break" else f"work for {gap_id}\n")
        git("add", f"{gap_id}.txt")
        git("commit", "--quiet", "-m", f"{gap_id}: do the work")
        journal("commits", f"{os.getpid()} {gap_id} {git('rev-parse', 'HEAD').stdout.strip()}")


if __name__ == "__main__":
    main()
