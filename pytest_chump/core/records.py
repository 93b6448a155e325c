"""The plain records the flow passes along: a pick request, a routing arm and its stats, an
outcome and its reflection. Values only, no I/O; hooks receive and return them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PickRequest:
    """What the picker knows besides the backlog.

    ``slots`` is how many gaps may start now (capacity minus those in flight);
    ``done_ids`` counts as done for ``depends_on`` (backlog ``done`` plus shipped this run);
    ``busy_ids`` are leased or in flight and never picked again.
    """

    slots: int
    done_ids: frozenset[str] = frozenset()
    busy_ids: frozenset[str] = frozenset()
    kind: str = "any"
    order: str = "critical-path"
    statuses: frozenset[str] = frozenset({"open"})
    bias_threshold: float = 0.8
    bias_window: int = 10
    recently_done: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Arm:
    """A routing choice: which spawner runs a gap, with which model (None = its default)."""

    spawner: str
    model: str | None = None

    @property
    def label(self) -> str:
        return self.spawner if self.model is None else f"{self.spawner}:{self.model}"


@dataclass(frozen=True, slots=True)
class ArmStats:
    """Stored outcomes of one arm for a class of gaps."""

    successes: int = 0
    failures: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """A terminal outcome: one of ``model.OUTCOMES``, with its PR number and reason."""

    name: str
    pr_number: int | None = None
    reason: str = ""
    cause: str = ""
    failing_checks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reflection:
    """The record written once per terminal outcome (reference fields plus ours)."""

    gap_id: str
    effort: str
    gap_domain: str
    outcome: str
    duration_s: int
    parallel_siblings: int
    pr_number: int | None
    notes: str
    backend: str = ""
    model: str | None = None
    cost_usd: float | None = None
    turns: int | None = None
    exit_code: int | None = None
    kill_reason: str = ""
    failing_checks: tuple[str, ...] = ()
    dispatch_id: int | None = None
    cause: str = ""


def reflection_from_dict(data: Mapping[str, object]) -> Reflection:
    """A reflection back from its stored JSON form (unknown keys ignored)."""
    names = {f.name for f in dataclasses.fields(Reflection)}
    values = {k: v for k, v in data.items() if k in names}
    if isinstance(values.get("failing_checks"), list):
        values["failing_checks"] = tuple(values["failing_checks"])  # type: ignore[arg-type]
    return Reflection(**values)  # type: ignore[arg-type]
