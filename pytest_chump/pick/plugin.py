"""Built-in picker: the default ``chump_pick`` implementation, backed by ``picker.pick``.

It is ``trylast``, so any plugin or ``conftest.py`` that implements ``chump_pick`` overrides it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_chump import hookimpl
from pytest_chump.core.model import Gap
from pytest_chump.core.records import PickRequest
from pytest_chump.pick.picker import pick


@hookimpl(trylast=True)
def chump_pick(gaps: Sequence[Gap], request: PickRequest) -> list[Gap]:
    return pick(gaps, request)
