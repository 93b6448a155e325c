"""The BENCHMARKS.md header written by ``python -m benchmarks``: one row per benchmark with the
commit and date its section was last measured at, kept across partial runs, and the commit of
the last full run (a partial run used to drop the rows of the benchmarks it did not run)."""

from __future__ import annotations

from benchmarks.__main__ import Ran, header_block
from benchmarks.report import verdict

KNOWN = ["alpha", "beta", "gamma"]


def block(old: str, results: dict[str, Ran], at: str = "c2", stamp: str = "day 2") -> str:
    return header_block(old, results, KNOWN, stamp=stamp, at=at, where="here")


def rows(text: str) -> dict[str, list[str]]:
    """Per benchmark, its row's cells after the name."""
    found = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            found[cells[0].strip("`")] = cells[1:]
    return found


def test_a_full_run_writes_every_row_and_the_full_run_line() -> None:
    text = block("", {name: Ran(0, 10.0, True) for name in KNOWN}, at="c1", stamp="day 1")
    assert "_Last full run (every benchmark): day 1, commit c1, on here._" in text
    assert rows(text) == {name: ["ok", "c1", "day 1", "10 s"] for name in KNOWN}


def test_a_partial_run_keeps_the_other_rows_and_the_last_full_run() -> None:
    full = block("", {name: Ran(0, 10.0, True) for name in KNOWN}, at="c1", stamp="day 1")
    text = block(full, {"beta": Ran(0, 3.0, True)})
    assert "_Last full run (every benchmark): day 1, commit c1, on here._" in text
    assert rows(text) == {
        "alpha": ["ok", "c1", "day 1", "10 s"],
        "beta": ["ok", "c2", "day 2", "3 s"],
        "gamma": ["ok", "c1", "day 1", "10 s"],
    }
    assert text.count("<!-- run -->") == 1


def test_a_failure_that_left_the_section_keeps_the_figures_of_the_earlier_run() -> None:
    full = block("", {name: Ran(0, 10.0, True) for name in KNOWN}, at="c1", stamp="day 1")
    text = block(full, {"alpha": Ran(1, 2.0, False), "beta": Ran(1, 4.0, True)})
    alpha, beta = rows(text)["alpha"], rows(text)["beta"]
    assert alpha[0].startswith("**failed** at c2, day 2 (exit 1)")
    assert alpha[1:] == ["c1", "day 1", "10 s"]
    assert beta == ["**failed** (exit 1)", "c2", "day 2", "4 s"]  # its section is new


def test_the_old_three_column_header_is_kept_with_unknown_commits() -> None:
    old = (
        "# Benchmarks\n\n<!-- run -->\n_Last run of `python -m benchmarks`: x._\n\n"
        "| benchmark | result | took |\n|---|---|---|\n| `alpha` | ok | 14 s |\n<!-- /run -->\n"
    )
    text = block(old, {"beta": Ran(0, 1.0, True)})
    assert rows(text)["alpha"] == ["ok", "unknown", "unknown", "14 s"]
    assert rows(text)["gamma"] == ["not run yet", "", "", ""]
    assert "_No full run of `python -m benchmarks` recorded yet._" in text


def test_verdict_says_when_a_target_is_not_met() -> None:
    assert verdict(0.61, 0.2) == "not met"
    assert verdict(0.2, 0.2) == "met"
    assert verdict(0.99, 0.98, at_most=False) == "met"
    assert verdict(0.5, 0.98, at_most=False) == "not met"
