"""Claude Code stand-in: reads the prompt on stdin and prints a small stream-json session.

It records its input like ``probe.py``, then emits system/init, assistant events, a line that
is not JSON, a stderr warning and a final ``result`` event with cost, turns and session id.
"""

from __future__ import annotations

import json
import sys

import probe


def emit(event: dict[str, object]) -> None:
    print(json.dumps(event), flush=True)


probe.record()
args = sys.argv[1:]
model = args[args.index("--model") + 1] if "--model" in args else "default-model"
emit({"type": "system", "subtype": "init", "model": model, "session_id": "sess-42", "tools": []})
emit({"type": "assistant", "message": {"content": [{"type": "text", "text": "working"}]}})
print("plain text that is not an event", flush=True)
print("WARN: retrying a tool call", file=sys.stderr, flush=True)
emit({"type": "assistant", "message": {"content": [{"type": "text", "text": "done"}]}})
emit(
    {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "num_turns": 3,
        "total_cost_usd": 0.0123,
        "session_id": "sess-42",
        "result": "PR #7 " + "x" * 600,
    }
)
