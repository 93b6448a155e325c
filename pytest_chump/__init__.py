"""pytest-chump: a self-dispatching orchestrator for AI coding agents — and its public API.

Plugin authors and users import from here, and only from here; every other module is internal
and may move between releases. Importing this package is cheap (pluggy only): each name below
is loaded on first use.

Writing a plugin
    ``hookimpl``            marker for hook implementations (``@pytest_chump.hookimpl``)
    ``PROJECT_NAME``        ``"chump"``: the pluggy project and the entry-point group
    ``Register``            the ``register(name, factory)`` callback of registration hooks
    ``Settings``            the resolved configuration factories and hooks receive
    ``ChumpError``          raise it (or ``UsageError``) for a problem shown as one line

What a spawner implements, and what it is given
    ``Spawner``             ``name`` and ``spawn(request) -> SpawnHandle``
    ``SpawnHandle``         a running agent: ``poll``, ``terminate``, ``kill``, ``stderr_tail``,
                            ``last_activity``, ``report``, ``close``; ``pid``, ``log_path``
    ``SpawnRequest``        gap, prompt, worktree, branch, log path, env, model, ``notify``
    ``start``               the process runner the built-in spawners share (argv, own process
                            group, prompt on stdin, output in the log) -> ``ProcessHandle``

What a PR provider implements
    ``PrProvider``          ``name`` and ``poll(watches) -> {branch: PrStatus}``, one call per poll
    ``Watch``, ``PrStatus`` a branch in flight, and what the forge says about it

What a sink implements
    ``Sink``                ``name`` and ``write(reflection)``
    ``Reflection``          the one record a dispatch gets when it ends

What a backlog source implements
    ``BacklogSource``       ``name`` and ``load() -> Backlog`` (a tracker, a database, ...)
    ``Backlog``, ``Problem``  every gap read, and every problem tied to its gap
    ``check_mappings``      gaps given as plain mappings, checked as chump checks YAML

What hooks are handed
    ``Gap``                 a backlog item; ``Dispatch`` a gap handed to an agent;
    ``Outcome``             how a dispatch ended; ``PickRequest`` what the picker knows;
    ``Arm``, ``ArmStats``   a routing choice and its stored successes and failures

Testing a plugin (the fixtures ``chump_repo``, ``chump_backlog``, ``chump_run``, ... come with
the pytest plugin; these are the types they return)
    ``ChumpRepo``           a temporary git repository with a bare origin
    ``RunResult``           what ``chump_run`` produced: outcomes, reflections, output, counts
    ``FakeSpawner``, ``InstantProvider``, ``GitProvider``, ``MemorySink``  the built-ins the
                            other fixtures hand you
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import pluggy

from pytest_chump import _deprecated

__version__ = "0.1.0"
PROJECT_NAME = "chump"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

_PUBLIC: dict[str, str] = {
    "Register": "pytest_chump.core.protocols",
    "Settings": "pytest_chump.core.config",
    "ChumpError": "pytest_chump.core.errors",
    "UsageError": "pytest_chump.core.errors",
    "Spawner": "pytest_chump.core.protocols",
    "SpawnHandle": "pytest_chump.core.protocols",
    "SpawnRequest": "pytest_chump.core.protocols",
    "start": "pytest_chump.agents.process",
    "ProcessHandle": "pytest_chump.agents.process",
    "PrProvider": "pytest_chump.core.protocols",
    "Watch": "pytest_chump.core.protocols",
    "PrStatus": "pytest_chump.core.protocols",
    "Sink": "pytest_chump.core.protocols",
    "Reflection": "pytest_chump.core.records",
    "Gap": "pytest_chump.core.model",
    "Dispatch": "pytest_chump.core.protocols",
    "Outcome": "pytest_chump.core.records",
    "PickRequest": "pytest_chump.core.records",
    "Arm": "pytest_chump.core.records",
    "ArmStats": "pytest_chump.core.records",
    "BacklogSource": "pytest_chump.core.protocols",
    "Backlog": "pytest_chump.core.records",
    "Problem": "pytest_chump.core.records",
    "check_mappings": "pytest_chump.backlog",
    "ChumpRepo": "pytest_chump.selftest.fixtures",
    "RunResult": "pytest_chump.selftest.fixtures",
    "FakeSpawner": "pytest_chump.agents.fake",
    "InstantProvider": "pytest_chump.providers.instant",
    "GitProvider": "pytest_chump.providers.git",
    "MemorySink": "pytest_chump.reflect.memory_sink",
}
"""Public name -> the module that defines it (loaded on first use)."""

__all__ = [  # noqa: RUF022  (grouped as in the docstring)
    "PROJECT_NAME",
    "__version__",
    "hookimpl",
    "Register",
    "Settings",
    "ChumpError",
    "UsageError",
    "Spawner",
    "SpawnHandle",
    "SpawnRequest",
    "start",
    "ProcessHandle",
    "PrProvider",
    "Watch",
    "PrStatus",
    "Sink",
    "Reflection",
    "Gap",
    "Dispatch",
    "Outcome",
    "PickRequest",
    "Arm",
    "ArmStats",
    "BacklogSource",
    "Backlog",
    "Problem",
    "check_mappings",
    "ChumpRepo",
    "RunResult",
    "FakeSpawner",
    "InstantProvider",
    "GitProvider",
    "MemorySink",
]

if TYPE_CHECKING:
    from pytest_chump.agents.fake import FakeSpawner
    from pytest_chump.agents.process import ProcessHandle, start
    from pytest_chump.backlog import check_mappings
    from pytest_chump.core.config import Settings
    from pytest_chump.core.errors import ChumpError, UsageError
    from pytest_chump.core.model import Gap
    from pytest_chump.core.protocols import (
        BacklogSource,
        Dispatch,
        PrProvider,
        PrStatus,
        Register,
        Sink,
        Spawner,
        SpawnHandle,
        SpawnRequest,
        Watch,
    )
    from pytest_chump.core.records import (
        Arm,
        ArmStats,
        Backlog,
        Outcome,
        PickRequest,
        Problem,
        Reflection,
    )
    from pytest_chump.providers.git import GitProvider
    from pytest_chump.providers.instant import InstantProvider
    from pytest_chump.reflect.memory_sink import MemorySink
    from pytest_chump.selftest.fixtures import ChumpRepo, RunResult


def __getattr__(name: str) -> object:
    """Load a public name on first use (PEP 562), so ``import pytest_chump`` stays cheap."""
    home = _PUBLIC.get(name)
    if home is None:
        raise AttributeError(f"module 'pytest_chump' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


_deprecated.install()
