"""``chump serve [--host 127.0.0.1] [--port 8765] [--token T]``: the live dashboard and the
HTTP API of this repository (see ``observe/server.py`` for the routes).

Loopback unless told otherwise; another address needs a token (``--token`` or the
``CHUMP_SERVE_TOKEN`` variable, which keeps it out of the process list), and then every
request must carry it. The first line printed is the URL. SIGINT/SIGTERM stop it (exit 0).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.errors import UsageError
from pytest_chump.loop.app import App

TOKEN_VAR = "CHUMP_SERVE_TOKEN"  # noqa: S105  (the name of a variable)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="serve the live dashboard and the HTTP API")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)"
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"every request must carry it (Bearer or ?token=); default ${TOKEN_VAR}; "
        "needed for any address but loopback",
    )
    add_setting_flags(parser, names=())
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pytest_chump.observe.server import is_loopback, serve

    settings = App.create(setting_flags(args)).settings
    token = args.token if args.token is not None else os.environ.get(TOKEN_VAR, "")
    if not token and not is_loopback(args.host):
        raise UsageError(
            f"--host {args.host} is not loopback: give a --token (or ${TOKEN_VAR}) too"
        )
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: not a port number")
    try:
        server = serve(settings, args.host, args.port, token)
    except OSError as exc:
        raise UsageError(
            f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    worker = threading.Thread(target=server.serve_forever, name="chump-serve", daemon=True)
    worker.start()
    print(f"chump: serving {server.url}", flush=True)
    try:
        stop.wait()
    finally:
        server.stop()
        for sig, old in previous.items():
            signal.signal(sig, old)
    return 0
