"""The reference policy, as a baseline on the same backlog and the same agents: rounds of
``max_parallel`` gaps picked in declared priority order (the reference batch picker), each
round waiting for its slowest gap before the next starts.

It meets the same draws as the real loop (attempt n of a gap on a backend is the same draw
whoever starts it) and reacts the same way — a gap whose checks failed is tried again in a
later round while it has retries left, any other failure ends it — but with no poll delay at
all: each attempt holds its slot exactly as long as the ideal loop would.
"""

from __future__ import annotations

import time
from collections import Counter

from pytest_chump.core.config import Settings
from pytest_chump.core.records import Backlog
from pytest_chump.pick.picker import pickable_gaps
from pytest_chump.simulate.model import CI_FAIL, CRASH, HANG, NO_PR, SHIP, Model
from pytest_chump.simulate.run import Result, attempt_result, attempt_slot_time, critical_path
from pytest_chump.simulate.world import EPOCH

REFERENCE = "reference-rounds"
OUTCOME_OF = {
    SHIP: "shipped",
    CI_FAIL: "ci_failed",
    CRASH: "killed",
    HANG: "killed",
    NO_PR: "stalled",
}


def reference_rounds(
    backlog: Backlog, settings: Settings, model: Model, backend: str = "claude"
) -> Result:
    started = time.perf_counter()
    slots = settings.max_parallel
    shipped = set(backlog.done_ids())
    ended: set[str] = set()  # failed for good
    tries: Counter[str] = Counter()
    spent: dict[str, float] = {}
    outcomes: Counter[str] = Counter()
    bars: list[dict[str, object]] = []
    clock = 0.0
    while True:
        open_gaps = [g for g in backlog.dispatchable() if g.id not in shipped | ended]
        batch = pickable_gaps(open_gaps, slots, shipped)
        if not batch:
            break
        longest = 0.0
        for lane, gap in enumerate(batch):
            tries[gap.id] += 1
            n = tries[gap.id]
            held = attempt_slot_time(model, settings, gap, backend, n)
            result = attempt_result(model, settings, gap, backend, n)
            outcome = OUTCOME_OF[result]
            outcomes[outcome] += 1
            spent[gap.id] = spent.get(gap.id, 0.0) + held
            longest = max(longest, held)
            if result == SHIP:
                shipped.add(gap.id)
            elif not (result == CI_FAIL and n <= settings.retries):
                ended.add(gap.id)
            bars.append(
                {
                    "dispatch_id": len(bars) + 1,
                    "gap_id": gap.id,
                    "backend": backend,
                    "start": EPOCH + clock,
                    "end": EPOCH + clock + held,
                    "outcome": outcome,
                    "state": outcome,
                    "attempt": n,
                    "lane": lane,
                }
            )
        clock += longest
    history = {
        "v": 1,
        "generated_at": EPOCH + clock,
        "repo": f"simulated: {REFERENCE}",
        "since": EPOCH,
        "timeline": {"since": EPOCH, "lanes": slots, "bars": bars},
    }
    return Result(
        REFERENCE,
        "declared",
        len(backlog.gaps),
        slots,
        clock,
        critical_path(backlog.gaps, spent),
        sum(spent.values()),
        len(bars),
        len(shipped - set(backlog.done_ids())),
        dict(outcomes),
        time.perf_counter() - started,
        history,
    )
