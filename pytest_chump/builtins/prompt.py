"""Built-in prompt builder: the reference prompt contract. Any plugin overrides it."""

from __future__ import annotations

from pytest_chump import hookimpl
from pytest_chump.config import Settings
from pytest_chump.contracts import Dispatch
from pytest_chump.model import Gap
from pytest_chump.prompt import build_prompt


@hookimpl(trylast=True)
def chump_build_prompt(gap: Gap, dispatch: Dispatch, settings: Settings) -> str:
    return build_prompt(gap, dispatch)
