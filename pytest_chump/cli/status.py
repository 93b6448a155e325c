"""``chump status``: what is in flight (with stalled / silent flags), who holds leases, what ended.

Read-only: it never creates ``.chump/`` and never changes the store.
"""

from __future__ import annotations

import argparse
import json
import time

from pytest_chump.agents.render import last_activity
from pytest_chump.cli.setting_flags import add_setting_flags, setting_flags
from pytest_chump.core.redact import printable
from pytest_chump.loop.app import App
from pytest_chump.loop.progress import elapsed
from pytest_chump.state.database import DB_NAME
from pytest_chump.state.locks import STATE_DIR
from pytest_chump.state.rows import CircuitRow, DispatchRow, HoldRow, RetryRow
from pytest_chump.state.store import Store


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("status", help="show dispatches in flight, leases and last outcomes")
    add_setting_flags(parser, names=())
    parser.add_argument("--last", type=int, default=10, metavar="N", help="ended dispatches shown")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object (schema: pytest_chump/core/schemas)"
    )
    parser.set_defaults(run=run)


def _running(row: DispatchRow, now: float, watched: bool) -> str:
    watcher = "" if watched else "  (orchestrator gone: resume with --watch)"
    return (
        f"  {row.gap_id:<16} {row.backend:<8} pid {row.pid or '-':<7} "
        f"{elapsed(now - row.started_at):>8}  {row.state:<8} {row.branch}{watcher}"
    )


def _ended(row: DispatchRow) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row.ended_at or row.started_at))
    pr = f"PR #{row.pr_number}" if row.pr_number is not None else ""
    cause = f"cause:{row.cause}" if row.cause else ""
    cost = f"${row.cost_usd:.2f}" if row.cost_usd is not None else ""
    line = f"  {when}  {row.gap_id:<16} {row.outcome:<14} {pr:<9} {cost:<7} {cause} {row.reason}"
    return line.rstrip()


def run(args: argparse.Namespace) -> int:
    app = App.create(setting_flags(args))
    if not (app.settings.repo_root / STATE_DIR / DB_NAME).exists():
        empty: dict[str, object] = {
            k: [] for k in ("in_flight", "needs_human", "retries", "circuits")
        }
        empty_state = {**empty, "leases": {}, "last_outcomes": []}
        print(json.dumps(empty_state) if args.json else "no dispatches yet (no .chump/chump.db)")
        return 0
    now = time.time()
    with Store.for_repo(app.settings.repo_root) as store:
        running = store.unfinished()
        watched = {row.id: store.live(row.owner) for row in running}
        ended = store.dispatches("outcome IS NOT NULL", order="ended_at DESC", limit=args.last)
        leases = store.live_leases()
        holds, retries, circuits = store.holds(), store.retries(), store.circuits()
    if args.json:
        state = (running, watched, leases, holds, retries, circuits, ended)
        print(json.dumps(as_json(*state, now), sort_keys=True))
        return 0
    print(f"in flight ({len(running)}):")
    for row in running:
        print(printable(_running(row, now, watched[row.id])))
        said = last_activity(row.log_path)
        if said:
            print(f"      last: {said}")
    print(f"leases ({len(leases)}): " + ", ".join(f"{g} ({o})" for g, o in sorted(leases.items())))
    for line in _reactions(holds, retries, circuits, now):
        print(printable(line))
    print(f"last outcomes ({len(ended)}):")
    for row in ended:
        print(printable(_ended(row)))
    return 0


def as_json(
    running: list[DispatchRow],
    watched: dict[int, bool],
    leases: dict[str, str],
    holds: dict[str, HoldRow],
    retries: dict[str, RetryRow],
    circuits: dict[str, CircuitRow],
    ended: list[DispatchRow],
    now: float,
) -> dict[str, object]:
    """``chump status --json`` (``core/schemas/status.schema.json``); free text is the same
    redacted, bounded text the store keeps."""
    return {
        "in_flight": [
            {
                "dispatch_id": r.id,
                "gap_id": r.gap_id,
                "backend": r.backend,
                "model": r.model,
                "pid": r.pid,
                "state": r.state,
                "branch": r.branch,
                "started_at": r.started_at,
                "elapsed_s": max(0.0, now - r.started_at),
                "attempt": r.attempt,
                "watched": watched[r.id],
                "last_activity": last_activity(r.log_path),
            }
            for r in running
        ],
        "leases": dict(sorted(leases.items())),
        "needs_human": [
            {
                "gap_id": h.gap_id,
                "reason": h.reason,
                "cause": h.cause,
                "dispatch_id": h.dispatch_id,
                "since": h.since,
            }
            for h in holds.values()
        ],
        "retries": [
            {
                "gap_id": r.gap_id,
                "attempt": r.attempt,
                "kind": r.kind,
                "cause": r.cause,
                "not_before": r.not_before,
            }
            for r in retries.values()
        ],
        "circuits": [
            {"arm": arm, "message": c.message, "opened_at": c.opened_at}
            for arm, c in circuits.items()
        ],
        "last_outcomes": [
            {
                "dispatch_id": r.id,
                "gap_id": r.gap_id,
                "outcome": r.outcome,
                "cause": r.cause,
                "reason": r.reason,
                "pr_number": r.pr_number,
                "ended_at": r.ended_at,
                "attempt": r.attempt,
                "cost_usd": r.cost_usd,
            }
            for r in ended
        ],
    }


def _reactions(
    holds: dict[str, HoldRow],
    retries: dict[str, RetryRow],
    circuits: dict[str, CircuitRow],
    now: float,
) -> list[str]:
    """Gaps waiting for a human, attempts scheduled, backends broken (only when there are)."""
    lines = []
    if holds:
        lines.append(f"needs a human ({len(holds)}): `chump retry ID` when it can go on")
        lines += [f"  {h.gap_id:<16} {h.reason}" for h in holds.values()]
    if retries:
        lines.append(f"retries ({len(retries)}):")
        for r in retries.values():
            wait = r.not_before - now
            when = f"in {elapsed(wait)}" if wait > 0 else "due"
            lines.append(f"  {r.gap_id:<16} attempt {r.attempt} {r.kind:<9} {when} ({r.cause})")
    if circuits:
        lines.append(f"open circuits ({len(circuits)}):")
        lines += [f"  {arm}: {c.message}" for arm, c in circuits.items()]
    return lines
