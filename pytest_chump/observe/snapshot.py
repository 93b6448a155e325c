"""What a repository's orchestration looks like now, as plain JSON-able data.

``state`` is ``GET /api/v1/state`` (and what the dashboard draws); ``detail`` is one
dispatch; ``history`` is what ``chump report`` draws. All of it is read from the store
through a read-only connection, so it works while orchestrators run and when none does, and
looking never changes anything. Free text is what the store keeps (redacted and bounded when
it was written); an agent's last line is rendered, redacted and bounded here.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_chump.agents.render import last_activity
from pytest_chump.core.config import Settings
from pytest_chump.core.model import SUCCESS_OUTCOMES
from pytest_chump.core.redact import known_secrets
from pytest_chump.learn.routing import overall_stats, posterior_mean
from pytest_chump.state.database import DB_NAME, StorageError, read_only
from pytest_chump.state.rows import DispatchRow
from pytest_chump.state.schema import MIGRATIONS
from pytest_chump.state.store import Store
from pytest_chump.state.telemetry import last_seq

VERSION = 1
RECENT = 50  # ended dispatches in the state
TIMELINE_S = 24 * 3600.0  # how far back the dashboard's timeline reaches
TIMELINE_BARS = 250  # at most, newest first (the report draws the whole history)
DAY_S = 86400.0


@contextmanager
def reading(repo_root: Path) -> Iterator[Store | None]:
    """The store of ``repo_root`` for reading (None while it has none)."""
    path = repo_root / ".chump" / DB_NAME
    if not path.is_file():
        yield None
        return
    with read_only(path) as conn:
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:  # not a database, or locked past the timeout
            raise StorageError(f"{path}: cannot read the state database: {exc}") from None
        if version == 0:  # being created right now: nothing in it yet
            yield None
            return
        if version > len(MIGRATIONS):
            raise StorageError(
                f"{path}: schema version {version} is newer than this chump knows "
                f"({len(MIGRATIONS)}); upgrade pytest-chump"
            )
        if version < len(MIGRATIONS):
            raise StorageError(
                f"{path}: the state database has schema version {version}, older than this "
                f"chump's ({len(MIGRATIONS)}); the next `chump dispatch` migrates it"
            )
        yield Store.over(conn, path)


@dataclass(frozen=True, slots=True)
class Bar:
    """One dispatch on the timeline: which lane (slot) it ran in, from when to when."""

    dispatch_id: int
    gap_id: str
    backend: str
    start: float
    end: float | None  # None: still running
    outcome: str | None
    state: str
    attempt: int
    lane: int

    def as_dict(self) -> dict[str, object]:
        return {
            "dispatch_id": self.dispatch_id,
            "gap_id": self.gap_id,
            "backend": self.backend,
            "start": self.start,
            "end": self.end,
            "outcome": self.outcome,
            "state": self.state,
            "attempt": self.attempt,
            "lane": self.lane,
        }


_BAR_SQL = (
    "SELECT id, gap_id, backend, started_at, ended_at, outcome, state, attempt "
    "FROM dispatches WHERE {where} ORDER BY started_at DESC, id DESC LIMIT ?"
)


def bars(store: Store, where: str, params: tuple[object, ...], limit: int = -1) -> list[Bar]:
    """The dispatches matching ``where`` (newest ``limit``) as bars on lanes, in start order."""
    rows = store.conn.execute(_BAR_SQL.format(where=where), (*params, limit)).fetchall()
    return lanes(rows[::-1])


def _window(store: Store, since: float, limit: int) -> list[Bar]:
    """The timeline of the state: dispatches started since ``since`` and every one still
    unfinished (two indexed reads; an ``OR`` of the two would scan the table)."""
    recent = store.conn.execute(_BAR_SQL.format(where="started_at >= ?"), (since, limit))
    running = store.conn.execute(_BAR_SQL.format(where="outcome IS NULL"), (limit,))
    rows = {row[0]: row for row in [*recent.fetchall(), *running.fetchall()]}
    newest = sorted(rows.values(), key=lambda r: (r[3], r[0]), reverse=True)[:limit]
    return lanes(newest[::-1])


def _history_key(conn: sqlite3.Connection) -> tuple[object, ...]:
    """What changes whenever the totals or the routing statistics can: a dispatch added or
    ended, a routing outcome stored (each an indexed lookup)."""
    return (
        conn.execute("SELECT MAX(id) FROM dispatches").fetchone()[0],
        conn.execute("SELECT MAX(ended_at) FROM dispatches").fetchone()[0],
        conn.execute("SELECT MAX(id) FROM routing_outcomes").fetchone()[0],
    )


def lanes(rows: Sequence[Sequence[Any]]) -> list[Bar]:
    """Each dispatch (a row of ``_BAR_SQL``, in start order) in the lowest lane free when it
    started: lanes are the slots as they were used, at most as many as ran at once."""
    free: list[int] = []  # lanes free now (a heap)
    busy: list[tuple[float, int]] = []  # (when it frees, lane) (a heap)
    out = []
    for ident, gap_id, backend, start, ended_at, outcome, state, attempt in rows:
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        lane = heapq.heappop(free) if free else len(busy) + len(free)
        end = ended_at if outcome is not None else None
        heapq.heappush(busy, (end if end is not None else math.inf, lane))
        out.append(
            Bar(ident, gap_id, backend, start, end, outcome, outcome or state, attempt, lane)
        )
    return out


def _soft_deadline(row: DispatchRow, s: Settings) -> float:
    """The soft deadline its orchestrator gave it (recorded at the start), else this one's."""
    given = row.meta_dict.get("soft_deadline")
    if isinstance(given, int | float) and not isinstance(given, bool) and given > 0:
        return float(given)
    return s.soft_deadline(row.effort or "default")


def _activity(log_path: str | None, secrets: list[str], cache: dict[str, Any] | None) -> str:
    """An agent's last line, read again only when its log changed since the last look."""
    if not log_path or cache is None:
        return last_activity(log_path, secrets)
    seen: dict[str, tuple[int, int, str]] = cache.setdefault("activity", {})
    try:
        info = os.stat(log_path)
    except OSError:
        return ""
    stamp = (info.st_size, info.st_mtime_ns)
    known = seen.get(log_path)
    if known is not None and known[:2] == stamp:
        return known[2]
    text = last_activity(log_path, secrets)
    if len(seen) > 4096:  # agents long gone: start over
        seen.clear()
    seen[log_path] = (*stamp, text)
    return text


def _running(
    row: DispatchRow,
    s: Settings,
    now: float,
    watched: bool,
    secrets: list[str],
    cache: dict[str, Any] | None = None,
) -> dict[str, object]:
    soft = _soft_deadline(row, s)
    waiting_for_pr = row.state == "awaiting-pr"  # the agent is done: its PR decides, no clock
    return {
        "dispatch_id": row.id,
        "gap_id": row.gap_id,
        "backend": row.backend,
        "model": row.model,
        "arm": row.meta_dict.get("arm") if isinstance(row.meta_dict.get("arm"), str) else None,
        "attempt": row.attempt,
        "branch": row.branch,
        "pid": row.pid,
        "state": row.state,
        "effort": row.effort,
        "priority": row.priority,
        "started_at": row.started_at,
        "elapsed_s": max(0.0, now - row.started_at),
        "stalled_at": None if waiting_for_pr else row.started_at + soft,
        "deadline_at": None if waiting_for_pr else row.started_at + 2 * soft,
        "last_activity": _activity(row.log_path, secrets, cache),
        "cost_usd": row.cost_usd,
        "tokens_in": row.tokens_in,
        "tokens_out": row.tokens_out,
        "watched": watched,
    }


def _ended(row: DispatchRow) -> dict[str, object]:
    end = row.ended_at if row.ended_at is not None else row.started_at
    return {
        "dispatch_id": row.id,
        "gap_id": row.gap_id,
        "backend": row.backend,
        "model": row.model,
        "outcome": row.outcome,
        "cause": row.cause,
        "reason": row.reason,
        "pr_number": row.pr_number,
        "attempt": row.attempt,
        "started_at": row.started_at,
        "ended_at": end,
        "duration_s": max(0.0, end - row.started_at),
        "cost_usd": row.cost_usd,
        "tokens_in": row.tokens_in,
        "tokens_out": row.tokens_out,
    }


def _totals(conn: sqlite3.Connection, since: float = 0.0) -> dict[str, object]:
    """Counts, cost and tokens of the dispatches started since ``since`` (0: all)."""
    rows = conn.execute(
        "SELECT COALESCE(outcome, ''), COUNT(*), COALESCE(SUM(cost_usd), 0), "
        "COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0) "
        "FROM dispatches WHERE started_at >= ? GROUP BY outcome",
        (since,),
    ).fetchall()
    by_outcome = {name: int(n) for name, n, *_ in rows if name}
    ended = sum(by_outcome.values())
    shipped = sum(n for name, n in by_outcome.items() if name in SUCCESS_OUTCOMES)
    return {
        "dispatches": sum(int(n) for _, n, *_ in rows),
        "ended": ended,
        "by_outcome": by_outcome,
        "ship_rate": shipped / ended if ended else None,
        "cost_usd": round(sum(float(r[2]) for r in rows), 6),
        "tokens_in": sum(int(r[3]) for r in rows),
        "tokens_out": sum(int(r[4]) for r in rows),
    }


def _routing(conn: sqlite3.Connection) -> list[dict[str, object]]:
    stats = overall_stats(conn)
    return [
        {
            "arm": arm.label,
            "successes": st.successes,
            "failures": st.failures,
            "mean": posterior_mean(st),
        }
        for arm, st in sorted(stats.items(), key=lambda item: item[0].label)
    ]


def _orchestrators(store: Store) -> list[dict[str, object]]:
    rows = store.conn.execute(
        "SELECT owner, host, pid, started_at, beat_at FROM owners ORDER BY started_at"
    ).fetchall()
    return [
        {"owner": o, "host": h, "pid": p, "started_at": s, "beat_at": b, "live": store.live(o)}
        for o, h, p, s, b in rows
    ]


def _utc_day_start(now: float) -> float:
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


def empty_state(settings: Settings, now: float) -> dict[str, object]:
    """The state of a repository that never dispatched anything (no store yet)."""
    return {
        "v": VERSION,
        "generated_at": now,
        "repo": str(settings.repo_root),
        "max_parallel": settings.max_parallel,
        "orchestrators": [],
        "running": [],
        "recent": [],
        "totals": {
            "dispatches": 0,
            "ended": 0,
            "by_outcome": {},
            "ship_rate": None,
            "cost_usd": 0.0,
            "tokens_in": 0,
            "tokens_out": 0,
        },
        "circuits": [],
        "needs_human": [],
        "retries": [],
        "budgets": _budgets(settings, 0.0),
        "routing": [],
        "timeline": {"since": now - TIMELINE_S, "lanes": 0, "bars": []},
        "last_seq": 0,
    }


def _budgets(settings: Settings, spent_today: float) -> dict[str, object]:
    return {
        "run_usd": settings.budget_usd or None,
        "daily_usd": settings.daily_budget_usd or None,
        "on_budget": settings.on_budget,
        "spent_today_usd": round(spent_today, 6),
    }


def state(
    store: Store | None,
    settings: Settings,
    now: float | None = None,
    secrets: list[str] | None = None,
    cache: dict[str, Any] | None = None,
) -> dict[str, object]:
    """``GET /api/v1/state``: running dispatches, recent outcomes, totals, circuits, holds,
    retries, budgets, routing posteriors and the timeline of the last day (``secrets``: what
    to mask in agents' lines, default :func:`secrets_of`; ``cache``: a dict kept between calls
    where the totals and routing statistics are reused while the history is unchanged)."""
    now = time.time() if now is None else now
    secrets = secrets_of(settings) if secrets is None else secrets
    snap = empty_state(settings, now)
    if store is None:
        return snap
    running = store.unfinished()
    live: dict[str, bool] = {}
    for row in running:
        if row.owner not in live:
            live[row.owner] = store.live(row.owner)
    recent = store.dispatches("outcome IS NOT NULL", order="ended_at DESC", limit=RECENT)
    window = _window(store, now - TIMELINE_S, TIMELINE_BARS)
    key = (str(store.path), _history_key(store.conn))
    if cache is not None and cache.get("key") == key:
        totals, routing = cache["totals"], cache["routing"]
    else:
        totals, routing = _totals(store.conn), _routing(store.conn)
        if cache is not None:
            cache.update(key=key, totals=totals, routing=routing)
    by_id = {bar.dispatch_id: bar.lane for bar in window}
    snap.update(
        orchestrators=_orchestrators(store),
        running=[
            {**_running(r, settings, now, live[r.owner], secrets, cache), "lane": by_id.get(r.id)}
            for r in running
        ],
        recent=[_ended(r) for r in recent],
        totals=totals,
        circuits=[
            {"arm": arm, "message": c.message, "opened_at": c.opened_at}
            for arm, c in store.circuits().items()
        ],
        needs_human=[
            {
                "gap_id": h.gap_id,
                "reason": h.reason,
                "cause": h.cause,
                "dispatch_id": h.dispatch_id,
                "since": h.since,
            }
            for h in store.holds().values()
        ],
        retries=[
            {
                "gap_id": r.gap_id,
                "attempt": r.attempt,
                "kind": r.kind,
                "cause": r.cause,
                "not_before": r.not_before,
            }
            for r in store.retries().values()
        ],
        budgets=_budgets(settings, store.spent(_utc_day_start(now))),
        routing=routing,
        timeline={
            "since": now - TIMELINE_S,
            "lanes": max((b.lane + 1 for b in window), default=0),
            "bars": [b.as_dict() for b in window],
        },
        last_seq=last_seq(store.conn),
    )
    return snap


def detail(store: Store, dispatch_id: int, settings: Settings) -> dict[str, object] | None:
    """``GET /api/v1/dispatches/{id}``: one dispatch with its reflection, or None."""
    row = store.dispatch(dispatch_id)
    if row is None:
        return None
    now = time.time()
    if row.outcome is None:
        watched = store.live(row.owner)
        shown: dict[str, object] = _running(row, settings, now, watched, secrets_of(settings))
    else:
        shown = _ended(row)
        shown["state"] = row.outcome
    reflection = store.conn.execute(
        "SELECT directive, record FROM reflections WHERE dispatch_id=?", (dispatch_id,)
    ).fetchone()
    shown.update(
        worktree=row.worktree,
        branch=row.branch,
        owner=row.owner,
        exit_code=row.exit_code,
        previous_dispatch_id=row.previous_id,
        has_log=bool(row.log_path and Path(row.log_path).is_file()),
        directive=reflection[0] if reflection else None,
        reflection=json.loads(reflection[1]) if reflection else None,
    )
    return shown


def history(store: Store | None, settings: Settings, since: float) -> dict[str, object]:
    """What ``chump report`` draws: every dispatch since ``since`` on lanes, outcomes and
    cost per day, and the ship rate of each backend per day."""
    now = time.time()
    rows = store.dispatches("started_at >= ?", (since,), order="started_at") if store else []
    days: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        if row.outcome is None:
            continue
        day = datetime.fromtimestamp(row.ended_at or row.started_at, UTC).strftime("%Y-%m-%d")
        per = days.setdefault(day, {}).setdefault(
            row.backend, {"ended": 0, "shipped": 0, "cost_usd": 0.0}
        )
        per["ended"] += 1
        per["shipped"] += row.outcome in SUCCESS_OUTCOMES
        per["cost_usd"] += row.cost_usd or 0.0
    drawn = bars(store, "started_at >= ?", (since,)) if store else []
    return {
        "v": VERSION,
        "generated_at": now,
        "repo": str(settings.repo_root),
        "since": since,
        "totals": _totals(store.conn, since) if store else empty_state(settings, now)["totals"],
        "routing": _routing(store.conn) if store else [],
        "timeline": {
            "since": since,
            "lanes": max((b.lane + 1 for b in drawn), default=0),
            "bars": [b.as_dict() for b in drawn],
        },
        "days": [
            {"day": day, "backend": backend, **{k: round(v, 6) for k, v in per.items()}}
            for day, backends in sorted(days.items())
            for backend, per in sorted(backends.items())
        ],
        "recent": [_ended(r) for r in rows if r.outcome is not None][-RECENT:][::-1],
    }


def secrets_of(settings: Settings) -> list[str]:
    """What the server masks in an agent's log besides what the supervisor masked."""
    return known_secrets(settings.configured_secrets())
