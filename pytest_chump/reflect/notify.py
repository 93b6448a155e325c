"""The built-in notifiers, a ``chump_notify`` plugin: a command, a webhook, the desktop.

``[tool.chump.notify]``:

- ``command = ["notify.sh", "--urgent"]``: run (argv, never a shell) with the event as JSON
  on stdin, within ``timeout``;
- ``webhook = "https://hooks.example/chump"``: POST the event as JSON within ``timeout``,
  ``retries`` more times after a failure (a 5xx, a refused connection), waiting a little longer
  each time;
- ``desktop = true``: ``notify-send`` when the machine has it;
- ``events = ["needs-human", "circuit-open"]``: only these (default: all of ``EVENTS``);
- ``timeout = "10s"``, ``retries = 2``.

Each delivery runs on a thread of its own, so a slow webhook never holds the loop; the run
waits for outstanding ones (``wait``) before it exits. A failing notifier is reported on
stderr, once per failure, and never stops anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_chump import hookimpl
from pytest_chump.core.config_values import boolean, integer, names, positive_duration
from pytest_chump.core.errors import UsageError
from pytest_chump.core.redact import bounded, printable

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings

SECTION = "[tool.chump.notify]"
EVENTS = (
    "needs-human",
    "circuit-open",
    "budget-reached",
    "gap-shipped",
    "agent-silent",
    "run-finished",
)
KEYS = ("command", "webhook", "desktop", "events", "timeout", "retries")
RETRY_WAIT = 0.5  # seconds before the first webhook retry; doubled for each next one

_pending: list[threading.Thread] = []
_lock = threading.Lock()


def check(table: Mapping[str, Any]) -> dict[str, Any]:
    """``[tool.chump.notify]`` checked and typed; a bad entry is one ``UsageError`` line."""
    config: dict[str, Any] = {"events": EVENTS, "timeout": 10.0, "retries": 2, "desktop": False}
    for key, value in table.items():
        if key not in KEYS:
            raise UsageError(f"{SECTION} {key}: unknown key (valid: {', '.join(KEYS)})")
        try:
            config[key] = _parse(key, value)
        except ValueError as exc:
            raise UsageError(f"{SECTION} {key}: {exc}") from None
    return config


def _parse(key: str, value: object) -> object:
    if key == "command":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a non-empty list of strings, got {value!r}")
        return tuple(value)
    if key == "webhook":
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value
    if key == "events":
        chosen = names(value)
        unknown = [e for e in chosen if e not in EVENTS]
        if unknown:
            raise ValueError(f"unknown event {unknown[0]!r} (valid: {', '.join(EVENTS)})")
        return chosen
    if key == "timeout":
        return positive_duration(value)
    if key == "retries":
        return integer(0)(value)
    return boolean(value)


@hookimpl(trylast=True)
def chump_notify(event: Mapping[str, object], settings: Settings) -> None:
    """Hand ``event`` to each configured notifier, each on its own thread."""
    if not settings.notify:
        return
    config = check(settings.notify)
    if event.get("event") not in config["events"]:
        return
    payload = json.dumps(dict(event), sort_keys=True, default=str)
    if "command" in config:
        _spawn(_run_command, config["command"], payload, config["timeout"])
    if "webhook" in config:
        _spawn(_post, config["webhook"], payload, config["timeout"], config["retries"])
    if config["desktop"] and shutil.which("notify-send"):
        title = f"chump: {event.get('event')}"
        argv = ("notify-send", title, str(event.get("message", "")))
        _spawn(_run_command, argv, "", config["timeout"])


def wait(timeout: float = 30.0) -> None:
    """Wait (at most ``timeout`` seconds in all) for deliveries still under way."""
    deadline = time.monotonic() + timeout
    with _lock:
        threads = list(_pending)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def _spawn(target: Callable[..., None], *args: object) -> None:
    def deliver() -> None:
        try:
            target(*args)
        except OSError as exc:  # reported, never raised: a notifier never stops the loop
            _warn(str(exc))
        except Exception as exc:
            _warn(f"{type(exc).__name__}: {exc}")
        finally:
            with _lock:
                _pending.remove(thread)

    thread = threading.Thread(target=deliver, name="chump-notify", daemon=True)
    with _lock:
        _pending.append(thread)
    thread.start()


def _run_command(argv: tuple[str, ...], payload: str, timeout: float) -> None:
    try:
        done = subprocess.run(
            list(argv),
            input=payload,
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise OSError(f"{argv[0]}: command not found") from None
    except subprocess.TimeoutExpired:
        raise OSError(f"{argv[0]}: no answer within {timeout:g}s") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise OSError(
            f"{argv[0]}: exit status {done.returncode}" + (f": {lines[-1]}" if lines else "")
        )


def _post(url: str, payload: str, timeout: float, retries: int) -> None:
    request = urllib.request.Request(  # noqa: S310  (the URL was checked to be http(s))
        url, data=payload.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    problem = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(RETRY_WAIT * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                answer.read(65536)
            return
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break  # the request itself is wrong: retrying will not help
        except (urllib.error.URLError, OSError) as exc:
            problem = str(getattr(exc, "reason", exc))
    where = "/".join(url.split("/")[:3])  # scheme and host: paths often hold the hook's token
    raise OSError(f"webhook {where}: {problem} (after {retries + 1} tries)")


def _warn(message: str) -> None:
    line = printable(bounded(f"WARN: notify: {message}"))
    print(line, file=sys.stderr, flush=True)
