"""The dashboard page and the report page: one HTML/CSS/JS bundle shipped in the package
(``observe/static``), no CDN and no fetch from elsewhere.

The template carries three markers that are replaced here: ``/*CHUMP_STYLE*/`` (the CSS),
``/*CHUMP_SCRIPT*/`` (the JS) and ``/*CHUMP_DATA*/`` (``null`` for the live dashboard, which
reads ``/api/v1/state`` and follows ``/api/v1/events``; a history object for the report,
which is drawn by the same script from the data inside the page).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

STATIC = Path(__file__).parent / "static"
_MARKER = re.compile(r"/\*CHUMP_(STYLE|SCRIPT|DATA)\*/")


@cache
def _bundle() -> tuple[str, str, str]:
    read = (STATIC / "dashboard.html", STATIC / "dashboard.css", STATIC / "dashboard.js")
    html, css, js = (path.read_text("utf-8") for path in read)
    return html, css, js


def _script_safe(data: object) -> str:
    """JSON that cannot end the ``<script>`` element it sits in, whatever its strings hold."""
    text = json.dumps(data, sort_keys=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(data: object | None) -> str:
    """The page: live (``data`` None) or a report of ``data`` (self-contained)."""
    html, css, js = _bundle()
    parts = {
        "STYLE": css.replace("</", "<\\/"),
        "SCRIPT": js.replace("</", "<\\/"),
        "DATA": "null" if data is None else _script_safe(data),
    }
    # one pass over the template: nothing inserted is searched for markers again
    return _MARKER.sub(lambda m: parts[m.group(1)], html)


def dashboard_html() -> str:
    return render(None)


def report_html(history: dict[str, object]) -> str:
    return render(history)
