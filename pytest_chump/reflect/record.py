"""Builds the one reflection record a dispatch gets when it ends, and its directive string.

The directive is a contract downstream tools parse (reference format); notes start with
``backend=<label>``, then `` cause:<class>`` for failures (see :mod:`pytest_chump.reflect.causes`),
then the agent's stderr tail. Every free-text field is redacted before any sink sees it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from pytest_chump.core.model import domain_for, outcome_class
from pytest_chump.core.records import Outcome, Reflection
from pytest_chump.core.redact import NOTES_LIMIT, bounded, clip
from pytest_chump.reflect.causes import classify
from pytest_chump.reflect.usage import usage_of

ERROR_PATTERN = "orchestrator_dispatch"


def build_notes(
    backend: str,
    outcome: Outcome,
    tail: Sequence[str],
    cause: str | None = None,
    secrets: Iterable[str] | None = None,
) -> str:
    """``backend=<label>[ cause:<class>][ reason: …]`` then the tail, redacted.

    ``cause`` defaults to the outcome's own (``build`` passes the classified one).
    """
    head = f"backend={backend}"
    if outcome_class(outcome.name) == "failure":
        head += f" cause:{(outcome.cause if cause is None else cause) or 'unknown'}"
    if outcome.reason:
        head += f" reason: {outcome.reason}"
    lines = [bounded(line, secrets=secrets) for line in (head, *tail)]  # redacted, then bounded
    return clip("\n".join(lines), NOTES_LIMIT)


def build(
    *,
    gap_id: str,
    effort: str,
    backend: str,
    outcome: Outcome,
    duration_s: float,
    parallel_siblings: int,
    tail: Sequence[str] = (),
    report: Mapping[str, object] | None = None,
    model: str | None = None,
    exit_code: int | None = None,
    dispatch_id: int | None = None,
    failing_checks: Sequence[str] = (),
    secrets: Iterable[str] | None = None,
    attempt: int = 1,
    previous_dispatch_id: int | None = None,
) -> Reflection:
    """The reflection for a finished dispatch: cause classified, every free-text field redacted."""
    report = report or {}
    usage = usage_of(report)
    cost, turns = usage.cost_usd, report.get("num_turns")
    known = list(secrets) if secrets is not None else None
    tail = [bounded(line, secrets=known) for line in tail]  # once: a 20 MB line, a short one
    cause = classify(outcome, tail, report)
    return Reflection(
        gap_id=gap_id,
        effort=effort,
        gap_domain=domain_for(gap_id),
        outcome=outcome.name,
        duration_s=int(duration_s),
        parallel_siblings=parallel_siblings,
        pr_number=outcome.pr_number,
        notes=build_notes(backend, outcome, tail, cause, known),
        backend=backend,
        model=model or (str(report["model"]) if report.get("model") else None),
        cost_usd=cost,
        turns=int(turns) if isinstance(turns, int) else None,
        exit_code=exit_code,
        kill_reason=bounded(outcome.reason, secrets=known) if outcome.name == "killed" else "",
        failing_checks=tuple(bounded(check, secrets=known) for check in failing_checks),
        dispatch_id=dispatch_id,
        cause=cause,
        attempt=attempt,
        previous_dispatch_id=previous_dispatch_id,
        input_tokens=usage.tokens_in,
        output_tokens=usage.tokens_out,
        cache_tokens=usage.tokens_cache,
    )


def directive(r: Reflection) -> str:
    """``dispatched gap=… effort=… domain=… outcome=… duration_s=… parallel_siblings=…
    pr_number=Some(n)|None notes=<first line of notes>``."""
    pr = f"Some({r.pr_number})" if r.pr_number is not None else "None"
    first = r.notes.splitlines()[0] if r.notes else ""
    return (
        f"dispatched gap={r.gap_id} effort={r.effort} domain={r.gap_domain} outcome={r.outcome} "
        f"duration_s={r.duration_s} parallel_siblings={r.parallel_siblings} pr_number={pr} "
        f"notes={first}"
    )


def exported(r: Reflection, created_at: float) -> dict[str, object]:
    """The record as other tools read it (jsonl sink, ``chump reflections --json``): the
    reflection's fields plus directive, outcome class, error pattern and ISO ``created_at``."""
    return {
        **dataclasses.asdict(r),
        "directive": directive(r),
        "outcome_class": outcome_class(r.outcome),
        "error_pattern": ERROR_PATTERN,
        "created_at": datetime.fromtimestamp(created_at, UTC).isoformat(timespec="seconds"),
    }
