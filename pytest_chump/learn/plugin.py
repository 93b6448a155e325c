"""Built-in router: the default ``chump_route``, Thompson sampling (or cascade) over the candidates.

It is ``trylast``, so any plugin or ``conftest.py`` implementing ``chump_route`` overrides it.

State: the strategy and the seeded RNG live in a :class:`Router` object. Plugins are registered
as modules (``DEFAULT_PLUGINS``), which pluggy cannot instantiate per plugin manager, so the
module keeps one current ``Router`` and ``chump_configure`` replaces it with a fresh one built
from the settings. Every ``App.create`` calls ``chump_configure``, so each run starts from its
own seed; the last configured run wins if two live in one process. Before any configuration
the router uses the defaults (Thompson, unseeded). Tests wanting isolation use ``Router``
directly or call ``chump_configure`` on their plugin manager.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pytest_chump import hookimpl
from pytest_chump.core.records import Arm, ArmStats

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings
    from pytest_chump.core.model import Gap


class Router:
    """A routing strategy (``thompson`` or ``cascade``) with its own random stream."""

    def __init__(self, strategy: str = "thompson", seed: int | None = None) -> None:
        self.strategy = strategy
        self.rng = random.Random(seed)  # noqa: S311 (sampling, not secrets)

    @classmethod
    def from_settings(cls, settings: Settings) -> Router:
        return cls(settings.routing_strategy, settings.routing_seed)

    def route(self, candidates: Sequence[Arm], stats: Mapping[Arm, ArmStats]) -> Arm | None:
        """The chosen arm, or None (defer) when there is nothing to choose from."""
        from pytest_chump.learn.routing import cascade, thompson

        if not candidates:
            return None
        if self.strategy == "cascade":
            return cascade(candidates)
        return thompson(candidates, stats, self.rng)[0]


_current = Router()


def current() -> Router:
    """The router the hook uses now (the one the last ``chump_configure`` made)."""
    return _current


@hookimpl
def chump_configure(settings: Settings) -> None:
    global _current
    _current = Router.from_settings(settings)


@hookimpl(trylast=True)
def chump_route(gap: Gap, candidates: Sequence[Arm], stats: Mapping[Arm, ArmStats]) -> Arm | None:
    return _current.route(candidates, stats)
