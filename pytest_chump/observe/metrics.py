"""``GET /metrics``: the repository's orchestration in the Prometheus text format (0.0.4).

Counts and sums come from the store (so they survive restarts and add up over every
orchestrator of the repository); latency histograms from each orchestrator's saved timings
(``loop/timings.py``), summed bucket by bucket (the buckets are fixed).
"""

from __future__ import annotations

import math

from pytest_chump.core.config import Settings
from pytest_chump.state.store import Store
from pytest_chump.state.telemetry import timings

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HISTOGRAMS = {
    "provider_poll_seconds": "Time one poll of the PR provider took (every branch in flight).",
    "refill_latency_seconds": "Time from a slot freeing to the next agent starting in it.",
    "dispatch_start_seconds": "Time to start one dispatch: lease, worktree, set-up, spawn.",
}


def _label(value: object) -> str:
    text = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'"{text}"'


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Text:
    """Families in the order declared, each with its HELP, TYPE and samples together (the
    exposition format wants a family's lines in one group)."""

    def __init__(self) -> None:
        self.families: dict[str, list[str]] = {}

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.families[name] = [f"# HELP chump_{name} {help_text}", f"# TYPE chump_{name} {kind}"]

    def sample(self, name: str, value: float, family: str = "", **labels: object) -> None:
        inner = ",".join(f"{k}={_label(v)}" for k, v in labels.items())
        line = (
            f"chump_{name}{{{inner}}} {_number(value)}"
            if inner
            else f"chump_{name} {_number(value)}"
        )
        self.families[family or name].append(line)

    def text(self) -> str:
        return "\n".join(line for lines in self.families.values() for line in lines) + "\n"


def render(store: Store | None, settings: Settings) -> str:
    """The metrics page (every family present, zero while there is no store)."""
    out = _Text()
    out.family("dispatches_total", "counter", "Dispatches ended, by outcome and backend.")
    out.family("agents_running", "gauge", "Dispatches in flight (no outcome yet).")
    out.family("cost_usd_total", "counter", "USD the agents reported, by backend.")
    out.family("tokens_total", "counter", "Tokens the agents reported, by backend and kind.")
    out.family("needs_human", "gauge", "Gaps held until a human lets them go on.")
    out.family("retries_scheduled", "gauge", "Gaps with a next attempt scheduled.")
    out.family("circuits_open", "gauge", "Backends whose circuit is open.")
    out.family("orchestrators_live", "gauge", "Orchestrators of the repository alive now.")
    out.family("max_parallel", "gauge", "Agent slots configured for the repository.")
    out.sample("max_parallel", settings.max_parallel)
    if store is None:
        for family in ("agents_running", "needs_human", "retries_scheduled", "circuits_open",
                       "orchestrators_live"):  # fmt: skip
            out.sample(family, 0)
    else:
        _from_store(out, store)
    _histograms(out, store)
    return out.text()


def _from_store(out: _Text, store: Store) -> None:
    rows = store.conn.execute(
        "SELECT outcome, backend, COUNT(*), COALESCE(SUM(cost_usd), 0), "
        "COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0), "
        "COALESCE(SUM(tokens_cache), 0) FROM dispatches GROUP BY outcome, backend "
        "ORDER BY outcome, backend",
    ).fetchall()
    running = 0
    cost: dict[str, float] = {}
    tokens: dict[tuple[str, str], int] = {}
    for outcome, backend, n, usd, t_in, t_out, t_cache in rows:
        name = str(backend)
        if outcome is None:
            running += int(str(n))
        else:
            out.sample("dispatches_total", float(str(n)), outcome=outcome, backend=name)
        cost[name] = cost.get(name, 0.0) + float(str(usd))
        for kind, count in (("input", t_in), ("output", t_out), ("cache", t_cache)):
            tokens[name, kind] = tokens.get((name, kind), 0) + int(str(count))
    out.sample("agents_running", running)
    for backend, usd in sorted(cost.items()):
        out.sample("cost_usd_total", round(usd, 6), backend=backend)
    for (backend, kind), count in sorted(tokens.items()):
        out.sample("tokens_total", count, backend=backend, kind=kind)
    out.sample("needs_human", len(store.holds()))
    out.sample("retries_scheduled", len(store.retries()))
    out.sample("circuits_open", len(store.circuits()))
    owners = [o for (o,) in store.conn.execute("SELECT owner FROM owners").fetchall()]
    out.sample("orchestrators_live", sum(1 for o in owners if store.live(o)))


def _histograms(out: _Text, store: Store | None) -> None:
    saved = timings(store.conn) if store is not None else []
    for name, help_text in HISTOGRAMS.items():
        out.family(name, "histogram", help_text)
        bounds: list[float] = []
        counts: list[int] = []
        total = 0.0
        for body in saved:
            these = body.get("buckets")
            hist = body.get(name)
            if not isinstance(these, list) or not isinstance(hist, dict):
                continue
            got = hist.get("buckets")
            if not isinstance(got, list) or len(got) != len(these) + 1:
                continue  # saved by a chump with other buckets: not comparable
            if not bounds:
                bounds, counts = [float(b) for b in these], [0] * (len(these) + 1)
            elif [float(b) for b in these] != bounds:
                continue
            counts = [c + int(g) for c, g in zip(counts, got, strict=True)]
            total += float(hist.get("sum", 0.0) or 0.0)
        running = 0
        for bound, count in zip([*bounds, math.inf], counts or [0], strict=False):
            running += count
            out.sample(f"{name}_bucket", running, name, le=_number(bound))
        out.sample(f"{name}_sum", round(total, 6), name)
        out.sample(f"{name}_count", sum(counts), name)
