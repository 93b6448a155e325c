"""Fixtures for testing chump plugins (a new spawner, provider, sink or policy) in a few lines.

``chump_repo`` is a temporary git repository with a bare origin; ``chump_backlog`` writes
and commits its backlog; ``chump_run`` drives the real orchestrator loop with the spawner,
provider and sinks you give it and returns outcomes and reflections. ``chump_*`` hooks in
your ``conftest.py`` take part, as they do in ``pytest --chump-self-test``.

The pytest plugin registers this module in every pytest run, so importing it costs next to
nothing: what the fixtures build lives in :mod:`~pytest_chump.selftest.harness` (``ChumpRepo``,
``RunResult``; still importable from here), imported when a fixture is first used.
PYTEST_DONT_REWRITE (no asserts here: pytest need not rewrite this module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from pytest_chump.agents.fake import FakeSpawner
    from pytest_chump.providers.git import GitProvider
    from pytest_chump.providers.instant import InstantProvider
    from pytest_chump.reflect.memory_sink import MemorySink
    from pytest_chump.selftest.harness import ChumpRepo, RunResult

_HARNESS_NAMES = ("ChumpRepo", "RunResult", "IDENTITY")


@pytest.fixture
def chump_repo(tmp_path: Path) -> ChumpRepo:
    """A temporary git repository (``main``) with a bare origin and an empty backlog."""
    from pytest_chump.selftest.harness import new_repo

    return new_repo(tmp_path)


@pytest.fixture
def chump_backlog(chump_repo: ChumpRepo) -> Callable[[str | Sequence[Mapping[str, Any]]], Path]:
    """Write and commit the repository's backlog: ``chump_backlog([{"id": "A-1", ...}])``."""
    return chump_repo.write_backlog


@pytest.fixture
def chump_fake_spawner(tmp_path: Path) -> FakeSpawner:
    """The ``fake`` spawner: writes ``<scratch>/<GAP-ID>`` instead of starting an agent."""
    from pytest_chump.selftest.harness import fake_spawner

    return fake_spawner(tmp_path)


@pytest.fixture
def chump_instant_provider() -> InstantProvider:
    """Every branch MERGED on first poll, PR numbers from 1000."""
    from pytest_chump.providers.instant import InstantProvider

    return InstantProvider()


@pytest.fixture
def chump_git_provider(chump_repo: ChumpRepo) -> GitProvider:
    """The offline git forge over ``chump_repo`` (shipped = landed on origin/main)."""
    from pytest_chump.providers.git import GitProvider

    return GitProvider(chump_repo.root, "origin/main")


@pytest.fixture
def chump_memory_sink() -> MemorySink:
    """A sink keeping reflections in ``.reflections``."""
    from pytest_chump.reflect.memory_sink import MemorySink

    return MemorySink()


@pytest.fixture
def chump_run(
    chump_repo: ChumpRepo, chump_memory_sink: MemorySink, request: pytest.FixtureRequest
) -> Callable[..., RunResult]:
    """Run the real orchestrator loop on ``chump_repo``'s backlog until nothing is left.

    ``chump_run(spawner=MySpawner(), provider="git", max_parallel=2, **settings)``: spawner
    and provider are objects or registered names; extra keyword arguments are settings.
    """
    from pytest_chump.selftest.harness import runner

    return runner(chump_repo, chump_memory_sink, request.config)


def __getattr__(name: str) -> object:
    """``ChumpRepo``, ``RunResult`` and ``IDENTITY`` are defined in the harness (PEP 562)."""
    if name in _HARNESS_NAMES:
        from pytest_chump.selftest import harness

        return getattr(harness, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
