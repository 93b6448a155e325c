"""Agent output as people read it: one short line per event of claude's ``stream-json`` and
codex's ``--json`` streams (assistant text, tool calls and their results, errors, the final
result), other lines as they are. Untrusted text: every line comes back redacted, escaped for
the terminal and bounded; events that say nothing to a reader (deltas, bookkeeping) are None.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pytest_chump.agents.logfiles import MARK
from pytest_chump.core.redact import bounded, printable

TEXT_CHARS = 300  # of one assistant message or tool result shown on its line
TAIL_BYTES = 65536  # of the log read for a running agent's last activity


def render(line: str, secrets: Iterable[str] | None = None) -> str | None:
    """The readable form of one line of an agent's log, or None for nothing to show."""
    text = line.rstrip("\n")
    if not text.strip():
        return None
    event = _event(text)
    shown = text if event is None else _claude(event) or _codex(event)
    if shown is None:
        return None
    return printable(bounded(shown, secrets=secrets))


def _event(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _short(value: object, limit: int = TEXT_CHARS) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _claude(event: Mapping[str, Any]) -> str | None:
    kind = event.get("type")
    if kind == "system" and event.get("subtype") == "init":
        return f"session started (model {event.get('model') or '?'})"
    if kind in ("assistant", "user"):
        message = event.get("message")
        content = message.get("content") if isinstance(message, Mapping) else None
        parts = [_block(b) for b in content] if isinstance(content, list) else []
        shown = [p for p in parts if p]
        return " | ".join(shown) if shown else None
    if kind == "result":
        verdict = "error" if event.get("is_error") else str(event.get("subtype") or "done")
        cost = event.get("total_cost_usd")
        extra = f", ${cost:.2f}" if isinstance(cost, int | float) and cost else ""
        turns = event.get("num_turns")
        extra += f", {turns} turns" if isinstance(turns, int) else ""
        said = _short(event.get("result") or "", 200)
        return f"result: {verdict}{extra}" + (f": {said}" if said else "")
    return None


def _block(block: object) -> str | None:
    if not isinstance(block, Mapping):
        return None
    kind = block.get("type")
    if kind == "text" and block.get("text"):
        return f"assistant: {_short(block['text'])}"
    if kind == "tool_use":
        return f"tool: {block.get('name') or '?'} {_short(_input(block.get('input')), 200)}"
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            content = " ".join(str(c.get("text", "")) for c in content if isinstance(c, Mapping))
        flag = " (error)" if block.get("is_error") else ""
        return f"tool result{flag}: {_short(content or '', 200)}"
    return None


def _input(value: object) -> str:
    if isinstance(value, Mapping):
        for key in ("command", "file_path", "path", "pattern", "url", "description"):
            if value.get(key):
                return str(value[key])
        return json.dumps(value, sort_keys=True)
    return str(value or "")


def _codex(event: Mapping[str, Any]) -> str | None:
    kind = event.get("type")
    if kind == "thread.started":
        return "session started"
    if kind == "error":
        return f"error: {_short(event.get('message') or 'unknown')}"
    if kind == "turn.failed":
        error = event.get("error")
        message = error.get("message") if isinstance(error, Mapping) else error
        return f"error: {_short(message or 'turn failed')}"
    if kind == "turn.completed":
        usage = event.get("usage")
        if isinstance(usage, Mapping):
            tokens_in, tokens_out = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
            return f"turn done ({tokens_in} in, {tokens_out} out)"
        return "turn done"
    if kind == "item.completed":
        item = event.get("item")
        return _item(item) if isinstance(item, Mapping) else None
    return None


def _item(item: Mapping[str, Any]) -> str | None:
    kind = item.get("type")
    if kind == "agent_message":
        return f"assistant: {_short(item.get('text') or '')}"
    if kind == "reasoning":
        return None
    if kind == "command_execution":
        code = item.get("exit_code")
        status = f" (exit {code})" if code is not None else ""
        return f"tool: {_short(item.get('command') or '?', 200)}{status}"
    if kind == "file_change":
        changes = item.get("changes")
        paths = (
            [c.get("path") for c in changes if isinstance(c, Mapping)]
            if isinstance(changes, list)
            else []
        )
        return "edit: " + _short(", ".join(str(p) for p in paths if p) or "files", 200)
    if kind == "error":
        return f"error: {_short(item.get('message') or 'unknown')}"
    return None


def last_activity(log_path: str | None, secrets: Iterable[str] | None = None) -> str:
    """The last readable line an agent wrote to ``log_path`` ("" when there is none);
    ``secrets``: the values to mask (default: this process's secret-named variables)."""
    if not log_path:
        return ""
    for tail in (4096, TAIL_BYTES):  # the last line is usually near the end: look there first
        try:
            with open(log_path, "rb") as log:
                size = log.seek(0, 2)
                log.seek(max(0, size - tail))
                lines = log.read().decode("utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        if size > tail:
            lines = lines[1:]  # the first one may be cut
        for line in reversed(lines):
            if line.startswith(MARK):
                continue
            text = render(line, secrets)
            if text:
                return text
        if size <= tail:
            break
    return ""


def _starts(line: str, pid: int | None = None) -> bool:
    """Whether ``line`` is a supervisor's start mark (of the agent group ``pid``, if given)."""
    if not (line.startswith(MARK) and " start: " in line):
        return False
    return pid is None or f" group {pid} ===" in line


def log_lines(path: Path, pid: int | None = None, upto: int | None = None) -> list[str]:
    """The lines of the log at ``path`` (its rotated part first, then ``path`` up to byte
    ``upto``); with the dispatch's supervisor ``pid``, from that dispatch's start mark up to
    the next one (a gap's attempts share its log)."""
    data = b""
    for part, limit in ((path.with_name(path.name + ".1"), None), (path, upto)):
        try:
            with open(part, "rb") as log:
                data += log.read() if limit is None else log.read(limit)
        except OSError:
            continue
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if pid:
        starts = [i for i, line in enumerate(lines) if _starts(line, pid)]
        if starts:
            lines = lines[starts[-1] :]
            later = next((i for i, line in enumerate(lines) if i and _starts(line)), None)
            lines = lines[:later] if later is not None else lines
    return lines


def _backwards(path: Path, chunk: int = 65536) -> Iterator[str]:
    """The lines of ``path`` and then of its rotated part, last first, read from the end in
    chunks: the tail of a large log costs what the tail is, not the file."""
    for part in (path, path.with_name(path.name + ".1")):
        try:
            log = open(part, "rb")  # noqa: SIM115  (closed below)
        except OSError:
            continue
        with log:
            end = log.seek(0, os.SEEK_END)
            rest = b""
            while end > 0:
                start = max(0, end - chunk)
                log.seek(start)
                block = log.read(end - start) + rest
                end = start
                pieces = block.split(b"\n")
                rest = pieces.pop(0)  # may continue in the chunk before
                for piece in reversed(pieces):
                    if piece:
                        yield piece.decode("utf-8", errors="replace")
            if rest:
                yield rest.decode("utf-8", errors="replace")


def log_tail(
    path: Path, pid: int | None, n: int, secrets: Iterable[str], latest: bool = True
) -> list[str]:
    """The last ``n`` shown lines of one dispatch's part of the log (see :func:`log_lines`),
    read from the end. ``latest``: no later attempt wrote to this log, so its last lines are
    this dispatch's and reading stops after ``n`` of them."""
    mine: list[str] = []  # shown lines since the last start mark passed, newest first
    for line in _backwards(path):
        if pid is not None and _starts(line):
            if _starts(line, pid):
                return [*mine, printable(line)][:n][::-1]
            mine = []  # a later attempt's lines, not this dispatch's
            continue
        text = shown(line, False, secrets)
        if text is None:
            continue
        mine.append(text)
        if (latest or pid is None) and len(mine) >= n:
            break
    return mine[:n][::-1]  # (its start mark rotated away: what is left of it)


def shown(line: str, raw: bool, secrets: Iterable[str]) -> str | None:
    """A log line as shown: rendered (None: nothing to show), or with ``raw`` as written —
    both escaped; chump's own marks as they are."""
    if raw or line.startswith(MARK):
        return printable(line)
    return render(line, secrets)
