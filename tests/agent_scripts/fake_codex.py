"""Codex stand-in: reads the prompt on stdin and prints ``codex exec --json`` events.

With ``FAKE_CODEX_FAIL`` set it reports an ``error`` and a ``turn.failed`` and exits 1.
"""

from __future__ import annotations

import json
import os
import sys

import probe


def emit(event: dict[str, object]) -> None:
    print(json.dumps(event), flush=True)


probe.record()
emit({"type": "thread.started", "thread_id": "thread-9"})
emit({"type": "turn.started"})
if os.environ.get("FAKE_CODEX_FAIL"):
    emit({"type": "error", "message": "stream disconnected"})
    emit({"type": "turn.failed", "error": {"message": "quota exceeded"}})
    sys.exit(1)
emit({"type": "item.completed", "item": {"id": "item_0", "type": "agent_message", "text": "ok"}})
usage = {"input_tokens": 120, "cached_input_tokens": 20, "output_tokens": 30}
emit({"type": "turn.completed", "usage": usage})
