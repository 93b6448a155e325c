"""Agent stand-in that records what it was given: argv, stdin, environment and cwd.

The record goes to the file named by ``PROBE_OUT`` (else one JSON line on stdout); the exit
status is ``PROBE_EXIT`` (default 0).
"""

from __future__ import annotations

import json
import os
import sys


def record() -> dict[str, object]:
    data: dict[str, object] = {
        "argv": sys.argv[1:],
        "stdin": sys.stdin.read(),
        "env": dict(os.environ),
        "cwd": os.getcwd(),
    }
    out = os.environ.get("PROBE_OUT")
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
    else:
        print(json.dumps(data), flush=True)
    return data


if __name__ == "__main__":
    record()
    sys.exit(int(os.environ.get("PROBE_EXIT", "0")))
