"""Built-in prompt builder: the reference prompt contract, plus lessons from earlier dispatches.

Lessons are read only when ``lessons`` is on and ``.chump/chump.db`` already exists; any
problem reading them means a prompt without lessons, never a failed dispatch.
"""

from __future__ import annotations

from pytest_chump import hookimpl
from pytest_chump.core.config import Settings
from pytest_chump.core.model import Gap
from pytest_chump.core.protocols import Dispatch
from pytest_chump.dispatch.prompt import build_prompt


@hookimpl(trylast=True)
def chump_build_prompt(gap: Gap, dispatch: Dispatch, settings: Settings) -> str:
    return build_prompt(gap, dispatch, _lessons(gap, dispatch, settings))


def _lessons(gap: Gap, dispatch: Dispatch, settings: Settings) -> list[str]:
    if not settings.lessons:
        return []
    try:
        from contextlib import closing

        from pytest_chump.learn.lessons import lessons_for, open_history

        conn = open_history(settings.state_dir)
        if conn is None:
            return []
        with closing(conn):
            return lessons_for(conn, gap, dispatch.backend)
    except Exception:  # lessons are a hint: an unreadable history must not stop a dispatch
        return []
