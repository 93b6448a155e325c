"""Notifications with real notifiers: a webhook against a real HTTP server on a loopback port,
a command fed the event on stdin, ``notify-send`` on the desktop; a failing notifier never
stops the loop, a bad table is one line before anything starts."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_chump.reflect import notify
from tests.chumpproc import ChumpProcess
from tests.gitrepos import repo  # noqa: F401  (fixture)

EXECUTE = ("dispatch", "--no-dry-run", "--watch")
TWO = "gaps:\n  - {id: N-1, priority: P1, effort: s}\n  - {id: N-2, priority: P1, effort: s}\n"


class Hook:
    """A webhook receiver: answers 500 to the first ``failures`` POSTs, then 200."""

    def __init__(self, failures: int = 0) -> None:
        self.events: list[dict[str, object]] = []
        self.failures = failures
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.failures:
                    hook.failures -= 1
                    self.send_response(500)
                else:
                    hook.events.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook(failures=1)
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def _configure(repo: Path, table: str) -> None:
    (repo / "docs/gaps.yaml").write_text(TWO)
    (repo / "pyproject.toml").write_text(
        (repo / "pyproject.toml").read_text() + f"\n[tool.chump.notify]\n{table}\n"
    )


def test_the_webhook_hears_each_ship_and_the_end_of_the_run_despite_a_5xx(
    repo: Path, hook: Hook
) -> None:
    _configure(repo, f'webhook = "{hook.url}"\ntimeout = "5s"')
    chump = ChumpProcess(repo, *EXECUTE)
    assert chump.finish() == 0, chump.text
    names = sorted(str(e["event"]) for e in hook.events)
    assert names == ["gap-shipped", "gap-shipped", "run-finished"], hook.events
    shipped = {e["gap_id"] for e in hook.events if e["event"] == "gap-shipped"}
    assert shipped == {"N-1", "N-2"}
    (end,) = [e for e in hook.events if e["event"] == "run-finished"]
    assert end["message"] == "run finished: shipped=2 ci_failed=0 stalled=0 killed=0"
    assert end["repo"] == str(repo)


def test_a_command_gets_the_chosen_events_as_json_on_stdin(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    code = f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read() + '\\n')"
    _configure(
        repo, f'command = ["{sys.executable}", "-c", {json.dumps(code)}]\nevents = ["run-finished"]'
    )
    chump = ChumpProcess(repo, *EXECUTE)
    assert chump.finish() == 0, chump.text
    (line,) = out.read_text().splitlines()
    assert json.loads(line)["event"] == "run-finished"


def test_a_failing_notifier_is_reported_and_never_stops_the_run(repo: Path) -> None:
    _configure(repo, 'webhook = "http://127.0.0.1:9/nobody"\nretries = 0\ntimeout = "2s"')
    chump = ChumpProcess(repo, *EXECUTE)
    assert chump.finish() == 0, chump.text
    assert "OUTCOME: N-1 shipped" in chump.text
    assert "WARN: notify: webhook http://127.0.0.1:9: " in chump.text
    assert "nobody" not in chump.text  # a hook's path may hold its token


def test_the_desktop_notifier_runs_notify_send(repo: Path, tmp_path: Path) -> None:
    bin_dir, seen = tmp_path / "bin", tmp_path / "seen"
    bin_dir.mkdir()
    fake = bin_dir / "notify-send"
    record = f"open({str(seen)!r}, 'a').write(repr(sys.argv[1:]) + '\\n')"
    fake.write_text(f"#!{sys.executable}\nimport sys\n{record}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    _configure(repo, 'desktop = true\nevents = ["run-finished"]')
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    chump = ChumpProcess(repo, *EXECUTE, env={"PATH": path})
    assert chump.finish() == 0, chump.text
    (call,) = seen.read_text().splitlines()
    assert call.startswith("['chump: run-finished', 'run finished: shipped=2")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'pager = "on"',
            f"[tool.chump.notify] pager: unknown key (valid: {', '.join(notify.KEYS)})",
        ),
        (
            'webhook = "ftp://x"',
            "[tool.chump.notify] webhook: expected an http:// or https:// URL, got 'ftp://x'",
        ),
        (
            'events = ["gap-lost"]',
            "[tool.chump.notify] events: unknown event 'gap-lost' "
            f"(valid: {', '.join(notify.EVENTS)})",
        ),
    ],
)
def test_a_bad_table_is_one_line_before_anything_starts(
    repo: Path, table: str, message: str
) -> None:
    _configure(repo, table)
    chump = ChumpProcess(repo, *EXECUTE)
    assert chump.finish() == 2, chump.text
    assert chump.lines[-1] == f"chump: error: {message}"
    assert "DISPATCHED" not in chump.text


def test_check_types_the_table() -> None:
    config = notify.check({"command": ["x"], "timeout": "3s", "retries": "1", "desktop": "yes"})
    assert (config["command"], config["timeout"], config["retries"], config["desktop"]) == (
        ("x",),
        3.0,
        1,
        True,
    )
