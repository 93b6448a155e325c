"""The self-test verdict and its output lines (the reference contract).

``self-test PASSED: rows=4 reflections=4 dummy_files=4 elapsed=<N>ms`` then one row per gap;
on failure ``self-test FAILED: …`` followed by what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_chump.core.records import Outcome, Reflection


@dataclass
class Report:
    rows: list[tuple[str, str, Outcome]]  # gap id, branch, outcome
    reflections: Sequence[Reflection]
    dummy_files: list[str]  # names of the files the spawner wrote (snapshot)
    elapsed_s: float
    expected: list[str] = field(default_factory=list)  # gap ids the backlog made ready

    def problems(self) -> list[str]:
        """Everything the acceptance contract misses (empty when it passed)."""
        problems = [] if self.rows else ["no gap was dispatched"]
        dispatched = {gap for gap, _, _ in self.rows}
        problems += [f"{g} was never dispatched" for g in self.expected if g not in dispatched]
        for gap, _, outcome in self.rows:
            if outcome.name != "shipped":
                problems.append(f"{gap} ended {outcome.name} ({outcome.reason or 'no reason'})")
        reflected = [r.gap_id for r in self.reflections]
        problems += [
            f"{g} has {reflected.count(g)} reflections"
            for g in dispatched
            if reflected.count(g) != 1
        ]
        names = set(self.dummy_files)
        problems += [f"dummy file of {g} is missing" for g in sorted(dispatched) if g not in names]
        return problems

    @property
    def passed(self) -> bool:
        return not self.problems()

    def lines(self) -> list[str]:
        verdict = "PASSED" if self.passed else "FAILED"
        head = (
            f"self-test {verdict}: rows={len(self.rows)} reflections={len(self.reflections)} "
            f"dummy_files={len(self.dummy_files)} elapsed={int(self.elapsed_s * 1000)}ms"
        )
        out = [head + ("" if self.passed else ": " + "; ".join(self.problems()))]
        for gap, branch, outcome in self.rows:
            pr = f" PR #{outcome.pr_number}" if outcome.pr_number is not None else ""
            out.append(f"  {gap:<12} {branch:<30} {outcome.name}{pr}")
        return out
