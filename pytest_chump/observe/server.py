"""``chump serve``: the dashboard and its HTTP API, from the store.

The standard library's threading HTTP server is enough here: a handful of JSON routes, one
page and a Server-Sent Events stream for a few watchers, on loopback; a framework would add
a dependency to every install for no feature this needs.

Routes (``/api/v1``): ``GET state``, ``GET dispatches/{id}``, ``GET dispatches/{id}/log``,
``GET events`` (SSE), ``POST refresh``; ``GET /metrics``; ``GET /`` (the dashboard). Every
answer but the page, the stream and the metrics is JSON; every error is
``{"error": "...", "status": N}``. The server reads the store through read-only connections
and writes nothing; ``refresh`` only signals the running orchestrators.

Security: loopback by default; another address needs a token, and with a token every request
carries it (``Authorization: Bearer`` or ``?token=``). Requests whose ``Host`` is not this
server (DNS rebinding) and cross-site POSTs are refused; tokens never reach the log.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pytest_chump.agents.render import log_tail
from pytest_chump.core.config import Settings
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.redact import printable
from pytest_chump.observe import metrics, page, snapshot
from pytest_chump.state.database import BUSY_TIMEOUT_MS, DB_NAME
from pytest_chump.state.liveness import owner_alive
from pytest_chump.state.orchestrator_lock import nudge
from pytest_chump.state.telemetry import events_after, first_seq, last_seq

API = "/api/v1"
MAX_STREAMS = 32  # SSE watchers at once; more get 503
STREAM_POLL_S = 0.2  # how often a stream looks for new events
STREAM_BATCH = 500  # events read at once; a full batch is followed at once by the next
KEEPALIVE_S = 15.0
LOG_TAIL_MAX = 5000
MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 64  # requests served at once; more are closed at once
REQUEST_TIMEOUT_S = 30.0  # an idle or half-sent request is dropped after this
_NUMBER = re.compile(r"[0-9]{1,18}")


class HttpError(Exception):
    def __init__(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Site:
    """What the handlers share: the settings, the token, the streams, the stop signal."""

    settings: Settings
    token: str = ""
    stopping: threading.Event = field(default_factory=threading.Event)
    streams: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_STREAMS)
    )
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)
    cache: dict[str, Any] = field(default_factory=dict)
    """The state's slow parts (totals, routing), reused while the history is unchanged (one
    ``dict.update`` replaces them together)."""
    secrets: list[str] = field(default_factory=list)
    """What to mask in agents' lines: fixed at start (the environment does not change)."""

    def __post_init__(self) -> None:
        self.secrets = self.secrets or snapshot.secrets_of(self.settings)

    @property
    def db(self) -> Path:
        return self.settings.repo_root / ".chump" / DB_NAME


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    site: Site
    _slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):  # too many at once: drop the newcomer
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def __init__(self, address: tuple[str, int], site: Site) -> None:
        self.site = site
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), int(self.server_address[1])
        shown_host = f"[{host}]" if ":" in host else host
        return f"http://{shown_host}:{port}/"

    def stop(self) -> None:
        self.site.stopping.set()
        self.shutdown()
        self.server_close()


def serve(settings: Settings, host: str, port: int, token: str = "") -> Server:
    """A server bound to ``host:port`` (0: any free port), not yet serving."""
    if not token and not is_loopback(host):
        raise ValueError(f"--host {host} is not loopback: give --token too")
    return Server((host, port), Site(settings, token))


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    server_version = "chump"
    sys_version = ""
    timeout = REQUEST_TIMEOUT_S

    # --- plumbing -----------------------------------------------------------------------

    @property
    def site(self) -> Site:
        return self.server.site

    def log_message(self, format: str, *args: Any) -> None:
        """Only failures are logged, without the query (it may hold the token)."""

    def _log_failure(self, status: int, message: str) -> None:
        path = urlsplit(self.path).path
        self.site.log(printable(f"chump serve: {self.command} {path} -> {status}: {message}"))

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own errors (a malformed request line, headers too large,
        an unknown method) in the same JSON shape as every other error."""
        text = message or HTTPStatus(code).phrase
        body = json.dumps({"error": text, "status": int(code)}).encode()
        self.close_connection = True
        try:
            self.send_response(code, text)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            return

    def _number(self, raw: str, what: str, low: int = 0, high: int = 10**18) -> int:
        """A whole number from a request, or 400 naming it."""
        if not _NUMBER.fullmatch(raw) or not low <= int(raw) <= high:
            shown = raw[:40]
            raise HttpError(
                HTTPStatus.BAD_REQUEST, f"{what} must be a number {low}..{high}: {shown!r}"
            )
        return int(raw)

    def _json(self, data: object, status: int = 200) -> None:
        body = json.dumps(data, allow_nan=False, separators=(",", ":")).encode()
        self._send(status, body, "application/json")

    def _error(self, exc: HttpError) -> None:
        if exc.status >= 500 or exc.status in (401, 403):
            self._log_failure(exc.status, exc.message)
        body = json.dumps({"error": exc.message, "status": int(exc.status)}).encode()
        if self.command not in ("GET", "HEAD"):
            self.close_connection = True  # an unread request body must not become a request
        self._send(exc.status, body, "application/json", **exc.headers)

    def _query(self) -> dict[str, str]:
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        return {k: v[-1] for k, v in query.items()}

    def _check(self) -> None:
        """The token (when one is set) and the Host header (when none is)."""
        if self.site.token:
            scheme, _, given = self.headers.get("Authorization", "").partition(" ")
            bearer = given.strip() if scheme.lower() == "bearer" else ""
            bearer = bearer or self._query().get("token", "")
            if not hmac.compare_digest(bearer.encode(), self.site.token.encode()):
                raise HttpError(
                    HTTPStatus.UNAUTHORIZED,
                    "a token is required (Authorization: Bearer TOKEN, or ?token=TOKEN)",
                    {"WWW-Authenticate": 'Bearer realm="chump"'},
                )
            return
        host = self.headers.get("Host", "")
        try:
            name = urlsplit(f"//{host}").hostname or ""
        except ValueError:
            name = ""
        if not is_loopback(name):  # a page elsewhere resolving its name to 127.0.0.1
            raise HttpError(HTTPStatus.FORBIDDEN, f"Host {host!r} is not this server")

    def _dispatch(self, method: str) -> None:
        try:
            self._check()
            path = urlsplit(self.path).path
            for pattern, action in self._routes_of(method):
                match = pattern.fullmatch(path)
                if match:
                    action(*match.groups())
                    return
            allowed = [m for m in ("GET", "POST") if self._route_exists(m, path)]
            if allowed:
                allow = ", ".join(allowed)
                raise HttpError(
                    HTTPStatus.METHOD_NOT_ALLOWED, f"{method} {path}: use {allow}", {"Allow": allow}
                )
            raise HttpError(HTTPStatus.NOT_FOUND, f"no such route: {path}")
        except HttpError as exc:
            self._error(exc)
        except ChumpError as exc:  # the store cannot be read now (older schema, corrupt)
            self._error(HttpError(HTTPStatus.SERVICE_UNAVAILABLE, exc.lines()[0]))
        except sqlite3.Error as exc:  # locked past the timeout, or damaged under our feet
            message = f"the state database cannot be read now: {exc}"
            self._error(HttpError(HTTPStatus.SERVICE_UNAVAILABLE, message))
        except (BrokenPipeError, ConnectionResetError):
            return  # the client went away
        except Exception as exc:  # a bug: said, answered, never a dead connection
            self._error(HttpError(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}"))

    def _route_exists(self, method: str, path: str) -> bool:
        return any(pattern.fullmatch(path) for pattern, _ in self._routes_of(method))

    def _routes_of(self, method: str) -> list[tuple[re.Pattern[str], Callable[..., None]]]:
        if method == "POST":
            return [(re.compile(rf"{API}/refresh"), self.refresh)]
        if method != "GET":
            return []
        return [
            (re.compile(r"/"), self.dashboard),
            (re.compile(r"/index\.html"), self.dashboard),
            (re.compile(rf"{API}/state"), self.state),
            (re.compile(rf"{API}/dispatches/([^/]+)"), self.dispatch),
            (re.compile(rf"{API}/dispatches/([^/]+)/log"), self.log),
            (re.compile(rf"{API}/events"), self.events),
            (re.compile(r"/metrics"), self.metrics),
        ]

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # --- routes -------------------------------------------------------------------------

    def dashboard(self) -> None:
        self._send(
            200,
            page.dashboard_html().encode(),
            "text/html; charset=utf-8",
            Content_Security_Policy="default-src 'self'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
            Referrer_Policy="no-referrer",
        )

    def state(self) -> None:
        with snapshot.reading(self.site.settings.repo_root) as store:
            site = self.site
            state = snapshot.state(store, site.settings, secrets=site.secrets, cache=site.cache)
            self._json(state)

    def _id(self, raw: str) -> int:
        return self._number(raw, "a dispatch id", 1)

    def dispatch(self, raw: str) -> None:
        dispatch_id = self._id(raw)
        with snapshot.reading(self.site.settings.repo_root) as store:
            shown_row = snapshot.detail(store, dispatch_id, self.site.settings) if store else None
        if shown_row is None:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no dispatch {dispatch_id}")
        self._json(shown_row)

    def log(self, raw: str) -> None:
        dispatch_id = self._id(raw)
        query = self._query()
        tail = self._number(query.get("tail", "100"), "tail", 1, LOG_TAIL_MAX)
        with snapshot.reading(self.site.settings.repo_root) as store:
            row = store.dispatch(dispatch_id) if store else None
            newest = (
                store.conn.execute(
                    "SELECT MAX(id) FROM dispatches WHERE log_path = ?", (row.log_path,)
                ).fetchone()[0]
                if store and row
                else None
            )
        if row is None:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no dispatch {dispatch_id}")
        latest = newest == row.id  # no later attempt shares its log
        lines: list[str] = []
        if row.log_path:
            lines = log_tail(Path(row.log_path), row.pid, tail, self.site.secrets, latest)
        self._json({"dispatch_id": dispatch_id, "lines": lines})

    def metrics(self) -> None:
        with snapshot.reading(self.site.settings.repo_root) as store:
            text = metrics.render(store, self.site.settings)
        self._send(200, text.encode(), metrics.CONTENT_TYPE)

    def refresh(self) -> None:
        """Nudge every orchestrator of the repository on this host to re-read the backlog
        and refill (as the post-merge hook does); 409 when none runs."""
        origin = self.headers.get("Origin")
        cross = self.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none")
        if cross or (origin is not None and f"{origin}/" != self._own_origin()):
            raise HttpError(HTTPStatus.FORBIDDEN, "cross-site requests are refused")
        length = self.headers.get("Content-Length", "0")
        if not _NUMBER.fullmatch(length) or int(length) > MAX_BODY:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the body is too large")
        self.rfile.read(int(length))
        nudged = sorted(pid for pid in self._orchestrators() if nudge(pid))
        if not nudged:
            raise HttpError(HTTPStatus.CONFLICT, "no orchestrator is running in this repository")
        self._json({"nudged": nudged}, status=202)

    def _own_origin(self) -> str:
        return f"http://{self.headers.get('Host', '')}/"

    def _orchestrators(self) -> set[int]:
        """Pids of this repository's live ``chump dispatch`` orchestrators on this host (those
        that handle the nudge; each checked by its start time, so a reused pid is never
        signalled)."""
        with snapshot.reading(self.site.settings.repo_root) as store:
            rows = (
                store.conn.execute("SELECT owner, pid FROM owners WHERE nudge=1").fetchall()
                if store
                else []
            )
        host = socket.gethostname()
        return {
            int(pid) for owner, pid in rows if owner.startswith(f"{host}:") and owner_alive(owner)
        }

    def events(self) -> None:
        """Server-Sent Events: each stored event once, in order, from ``Last-Event-ID`` (or
        ``?since=SEQ``; default: from now on)."""
        query = self._query()
        raw = self.headers.get("Last-Event-ID") or query.get("since")
        start = None if raw is None else self._number(raw, "since / Last-Event-ID")
        with snapshot.reading(self.site.settings.repo_root):
            pass  # a store that cannot be read is a 503 now, not a broken stream later
        if not self.site.streams.acquire(blocking=False):
            raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, "too many event streams")
        try:
            self._stream(start)
        finally:
            self.site.streams.release()

    def _stream(self, after: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Accel-Buffering", "no")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            self._follow(after)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            return  # the client went away
        except Exception as exc:  # the headers are sent: say it in the log and end the stream
            self._log_failure(200, f"event stream ended: {type(exc).__name__}: {exc}")

    def _follow(self, after: int | None) -> None:
        """Send each stored event once, in order; a ``reset`` message when events were missed
        (pruned before the client read them, or the store replaced): refetch the state."""
        conn: sqlite3.Connection | None = None
        self._write(b"retry: 2000\n\n")
        said = time.monotonic()
        try:
            while not self.site.stopping.is_set():
                if conn is None and self.site.db.is_file():
                    conn = sqlite3.connect(f"{self.site.db.resolve().as_uri()}?mode=ro", uri=True)
                    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                batch: list[tuple[int, dict[str, object]]] = []
                if conn is not None:
                    newest, oldest = last_seq(conn), first_seq(conn)
                    if after is None:
                        after = newest
                    elif after > newest:
                        after = self._reset("the event store was replaced", 0)
                    elif oldest and after < oldest - 1:
                        after = self._reset(f"events before {oldest} were pruned", oldest - 1)
                    batch = [(e.seq, e.body) for e in events_after(conn, after, STREAM_BATCH)]
                elif after is None:
                    after = 0
                for seq, body in batch:
                    name = str(body.get("event", "message"))
                    data = json.dumps({**body, "seq": seq}, sort_keys=True)
                    self._write(f"id: {seq}\nevent: {name}\ndata: {data}\n\n".encode())
                    after = seq
                if len(batch) == STREAM_BATCH:
                    continue  # catching up: no pause
                if batch:
                    said = time.monotonic()
                elif time.monotonic() - said >= KEEPALIVE_S:
                    self._write(b": keep-alive\n\n")
                    said = time.monotonic()
                self.site.stopping.wait(STREAM_POLL_S)
        finally:
            if conn is not None:
                conn.close()

    def _reset(self, reason: str, after: int) -> int:
        data = json.dumps({"reason": reason, "after": after})
        self._write(f"event: reset\ndata: {data}\n\n".encode())
        return after

    def _write(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()
