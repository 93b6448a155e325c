"""A scripted agent that learns from the previous attempt: for the merge-gate retry tests.

Reads the prompt (keeps a copy in ``$AGENT_PROMPTS/<GAP-ID>.<n>.txt``), writes
``<GAP-ID>.txt`` and commits it; nothing is pushed (the merge gate lands it). The file says
``broken`` (the gate's check fails on it) or ``fixed``, per ``AGENT_MODE``:
``learn`` (default: fixed once the prompt has a previous-attempt section), ``never``
(always broken), ``ratelimit-once`` (the first attempt prints an API rate-limit error and
exits 1 without committing; later attempts commit fixed work).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def main() -> None:
    gap_id = os.environ["CHUMP_GAP_ID"]
    prompt = sys.stdin.read()
    folder = Path(os.environ["AGENT_PROMPTS"])
    attempt = len(list(folder.glob(f"{gap_id}.*.txt"))) + 1
    (folder / f"{gap_id}.{attempt}.txt").write_text(prompt, encoding="utf-8")
    mode = os.environ.get("AGENT_MODE", "learn")
    if mode == "ratelimit-once" and attempt == 1:
        print('API Error: 429 {"type":"rate_limit_error"}', file=sys.stderr, flush=True)
        sys.exit(1)
    fixed = mode == "ratelimit-once" or (mode == "learn" and "Previous attempt" in prompt)
    state = "fixed" if fixed else "broken"
    Path(f"{gap_id}.txt").write_text(f"{state} in attempt {attempt}\n", encoding="utf-8")
    subprocess.run(["git", "add", f"{gap_id}.txt"], check=True)
    subprocess.run(["git", "commit", "--quiet", "-m", f"{gap_id}: attempt {attempt}"], check=True)
    print(f"committed attempt {attempt} of {gap_id}", flush=True)


if __name__ == "__main__":
    main()
