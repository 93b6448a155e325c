"""Every hook chump calls: the one place that says what a plugin can change.

Roles with a single answer (picker, prompt builder, router) are ``firstresult`` hooks:
the first non-None result wins and the built-ins are ``trylast``, so any plugin or
``conftest.py`` overrides them. Registration hooks take a ``register`` callback so chump
validates names, rejects duplicates and can list the valid choices. Event hooks are
broadcast to every implementation and return nothing.

Threads. A dispatch starts on a dispatch worker thread (lease, worktree, prompt, agent;
``dispatch_workers`` of them, default 2), so ``chump_build_prompt`` — and a spawner's
``spawn`` — run there, for different gaps at the same time; with ``dispatch_workers = 0``
they run on the loop thread. Every other hook runs on the loop thread (the registration
hooks and ``chump_configure`` on the thread that sets chump up, which is the loop thread in
``chump dispatch``), one call at a time — but possibly while a worker is in
``chump_build_prompt``. So a plugin must not assume one call at a time across those two
groups: state shared by ``chump_build_prompt`` with itself or with other hooks needs a
lock; and a plugin that keeps a database connection opens one per thread (an SQLite
connection belongs to its thread; each chump worker has its own store connection, and
plugins are never handed one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pluggy

from pytest_chump import PROJECT_NAME

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings
    from pytest_chump.core.model import Gap
    from pytest_chump.core.protocols import Dispatch, Register
    from pytest_chump.core.records import Arm, ArmStats, Outcome, PickRequest, Reflection

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


# --- registration -------------------------------------------------------------------


@hookspec
def chump_register_spawners(register: Register) -> None:
    """Called once when chump starts, to collect the spawners plugins offer.

    :param register: call ``register(name, factory)`` for each spawner; ``factory`` takes
        the resolved :class:`pytest_chump.Settings` and returns an object satisfying
        :class:`pytest_chump.Spawner`. Names are what ``--spawner NAME`` selects;
        a name registered twice is an error.
    """


@hookspec
def chump_register_pr_providers(register: Register) -> None:
    """Called once when chump starts, to collect the pull-request providers plugins offer.

    :param register: call ``register(name, factory)``; ``factory(settings)`` returns an object
        satisfying :class:`pytest_chump.PrProvider`, selected by
        ``--pr-provider NAME``.
    """


@hookspec
def chump_register_sinks(register: Register) -> None:
    """Called once when chump starts, to collect the reflection sinks plugins offer.

    :param register: call ``register(name, factory)``; ``factory(settings)`` returns an object
        satisfying :class:`pytest_chump.Sink`, enabled by the ``sinks`` setting.
    """


@hookspec
def chump_register_backlog_sources(register: Register) -> None:
    """Called once when chump starts, to collect the backlog sources plugins offer.

    :param register: call ``register(name, factory)``; ``factory(settings)`` returns an object
        satisfying :class:`pytest_chump.BacklogSource`, selected by the
        ``backlog_source`` setting (built in: ``yaml``, ``github``).
    """


# --- policy (first non-None result wins) --------------------------------------------


@hookspec(firstresult=True)
def chump_pick(gaps: Sequence[Gap], request: PickRequest) -> list[Gap] | None:
    """Called whenever slots are free, to choose the gaps to start now, in start order
    (on the loop thread).

    :param gaps: the whole validated backlog, in declared order.
    :param request: free slots, ids that count as done, ids leased or in flight, filters.
    :return: at most ``request.slots`` gaps, or None to defer to the next implementation.
        Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def chump_build_prompt(gap: Gap, dispatch: Dispatch, settings: Settings) -> str | None:
    """Called once per dispatch, before the agent starts, to write the prompt it gets on stdin.

    Called on a dispatch worker thread, possibly at the same time for another gap (see the
    module docstring): an implementation must be thread-safe.

    :param gap: the gap being dispatched.
    :param dispatch: its branch, worktree and backend.
    :param settings: the resolved configuration.
    :return: the prompt text, or None to defer. Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def chump_route(gap: Gap, candidates: Sequence[Arm], stats: Mapping[Arm, ArmStats]) -> Arm | None:
    """Called once per dispatch, on the loop thread before its start is handed to a
    worker, to choose which spawner (and model) runs the gap.

    :param gap: the gap about to be dispatched.
    :param candidates: the arms the routing table allows for this gap, in preference order.
    :param stats: stored successes and failures per arm for gaps like this one.
    :return: one of ``candidates``, or None to defer. Stops at the first non-None result.
    """


# --- events (every implementation is called) -----------------------------------------


@hookspec
def chump_dispatched(dispatch: Dispatch) -> None:
    """Called after an agent was started for a gap and its dispatch was recorded (on the
    loop thread, once the worker that started it is done).

    :param dispatch: the new dispatch (gap, branch, worktree, backend, handle).
    """


@hookspec
def chump_outcome(dispatch: Dispatch, outcome: Outcome) -> None:
    """Called once when a dispatch that ran reaches its terminal outcome, right after the
    outcome and its reflection were recorded (a restart never calls it twice; a dispatch that
    never started, and runs with ``--no-reflect``, do not call it).

    :param dispatch: the finished dispatch.
    :param outcome: ``shipped``, ``ci_failed``, ``stalled``, ``killed`` or ``race_abandoned``.
    """


@hookspec
def chump_reflect(reflection: Reflection) -> None:
    """Called after a reflection was handed to the sinks: once when its dispatch ends, and
    again when a sink that had failed (or a crash) gets it later. Dedupe on ``dispatch_id``.

    :param reflection: the record (secrets already redacted from its notes).
    """


@hookspec
def chump_notify(event: Mapping[str, object], settings: Settings) -> None:
    """Called when something happened a person may want to hear of: ``needs-human``,
    ``circuit-open``, ``budget-reached``, ``gap-shipped``, ``agent-silent``, ``run-finished``.

    :param event: ``{"event": name, "time": ISO 8601, "repo": path, "message": one line,
        ...}`` with ``gap_id`` and more where they apply; free text is already redacted.
    :param settings: the resolved configuration (the built-in notifiers read ``notify``).
    A notifier that fails is reported and never stops the loop; one that blocks should hand
    the work to a thread (the built-ins do).
    """


@hookspec
def chump_configure(settings: Settings) -> None:
    """Called once after the configuration is resolved and before anything is dispatched.

    :param settings: the resolved configuration (read-only).
    """
