"""Built-in picker: the default ``chump_pick`` implementation, backed by ``picker.pick``.

It is ``trylast``, so any plugin or ``conftest.py`` that implements ``chump_pick`` overrides it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_chump import hookimpl
from pytest_chump.contracts import PickRequest
from pytest_chump.model import Gap
from pytest_chump.picker import pick


@hookimpl(trylast=True)
def chump_pick(gaps: Sequence[Gap], request: PickRequest) -> list[Gap]:
    return pick(gaps, request)
