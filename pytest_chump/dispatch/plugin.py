"""Built-in prompt builder: the reference prompt contract fitted to the repository (its rules,
the provider, the backlog), plus lessons — or the repository's own ``prompt_template``.

Lessons are read only when ``lessons`` is on and ``.chump/chump.db`` already exists; any
problem reading them means a prompt without lessons, never a failed dispatch.
"""

from __future__ import annotations

from pytest_chump import hookimpl
from pytest_chump.core.config import Settings
from pytest_chump.core.model import Gap
from pytest_chump.core.protocols import Dispatch
from pytest_chump.dispatch.prompt import briefing, build_prompt, load_template, render


@hookimpl(trylast=True)
def chump_build_prompt(gap: Gap, dispatch: Dispatch, settings: Settings) -> str:
    brief = briefing(settings, gap, _lessons(gap, dispatch, settings))
    template = load_template(settings)
    if template is not None:
        return render(template, gap, dispatch, brief)
    return build_prompt(gap, dispatch, brief=brief)


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
