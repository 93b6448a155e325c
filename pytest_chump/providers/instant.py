"""The ``instant`` provider for the self-test and plugin authors: every branch MERGED at once.

PR numbers are unique per branch and start at 1000, as in the reference self-test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import count

from pytest_chump import hookimpl
from pytest_chump.core.config import Settings
from pytest_chump.core.protocols import PrStatus, Register, Watch

FIRST_NUMBER = 1000


class InstantProvider:
    name = "instant"

    def __init__(self, start: int = FIRST_NUMBER) -> None:
        self._numbers = count(start)
        self._assigned: dict[str, int] = {}
        self.calls = 0

    def poll(self, watches: Sequence[Watch]) -> Mapping[str, PrStatus]:
        self.calls += 1
        result = {}
        for watch in watches:
            if watch.branch not in self._assigned:
                self._assigned[watch.branch] = next(self._numbers)
            result[watch.branch] = PrStatus(self._assigned[watch.branch], "MERGED")
        return result


def _factory(settings: Settings) -> InstantProvider:
    return InstantProvider()


@hookimpl
def chump_register_pr_providers(register: Register) -> None:
    register("instant", _factory)
