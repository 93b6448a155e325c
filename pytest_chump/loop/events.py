"""Events for the people watching (``chump_notify``): one shape, built in one place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pytest_chump.core.plugins import call_event
from pytest_chump.loop.app import App


def notify(
    app: App, warn: Callable[[str], None], name: str, message: str, **fields: object
) -> None:
    """Tell ``chump_notify`` plugins that ``name`` happened (``message``: one line)."""
    event = {
        "event": name,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "repo": str(app.settings.repo_root),
        "message": message,
        **{k: v for k, v in fields.items() if v is not None},
    }
    call_event(app.pm, "chump_notify", warn, event=event, settings=app.settings)
