"""What the orchestrator prints: plain lines always; on a terminal a live block with one line
per dispatch in flight, redrawn in place and erased before any other line."""

from __future__ import annotations

import io
from pathlib import Path

from pytest_chump.core.model import Gap
from pytest_chump.core.protocols import Dispatch
from pytest_chump.dispatch.dispatcher import Flight
from pytest_chump.loop.progress import Progress, elapsed


def flight(gap_id: str, state: str, age: float) -> Flight:
    import time

    dispatch = Dispatch(
        Gap(gap_id), f"chump/{gap_id.lower()}", Path("/wt"), "claude", time.time() - age
    )
    return Flight(dispatch, "", state=state)


def test_live_block_has_one_line_per_dispatch_and_is_erased_before_other_lines() -> None:
    out = io.StringIO()
    progress = Progress(out, out, live=True)
    progress.status([flight("A-1", "running", 5), flight("B-2", "silent", 125)])
    first = out.getvalue()
    assert first.splitlines() == [
        "  A-1              claude        0m05s  running",
        "  B-2              claude        2m05s  silent",
    ]
    progress.line("OUTCOME: A-1 shipped")
    assert out.getvalue()[len(first) :] == "\033[2F\033[JOUTCOME: A-1 shipped\n"
    progress.status([flight("B-2", "stalled", 3700)])
    assert out.getvalue().endswith("  B-2              claude     1h01m40s  stalled\n")


def test_without_a_terminal_there_is_no_live_block() -> None:
    out = io.StringIO()
    progress = Progress(out, out, live=False)
    progress.status([flight("A-1", "running", 5)])
    progress.line("OUTCOME: A-1 shipped")
    assert out.getvalue() == "OUTCOME: A-1 shipped\n"


def test_elapsed() -> None:
    assert (elapsed(0), elapsed(65), elapsed(3725)) == ("0m00s", "1m05s", "1h02m05s")


def test_every_line_is_escaped_for_the_terminal() -> None:
    import io

    from pytest_chump.loop.progress import Progress

    out = io.StringIO()
    progress = Progress(out, out)
    progress.warn("agent said \x1b]0;pwned\x07\x1b[2J\rOUTCOME: FAKE shipped")
    progress.provider_error("gh: \x1b[31mred\x1b[0m")
    text = out.getvalue()
    assert "\x1b" not in text
    assert "\r" not in text
    assert len(text.splitlines()) == 2
    assert "\\x1b]0;pwned\\x07" in text


def test_a_closed_output_never_stops_the_loop() -> None:
    import io

    from pytest_chump.loop.progress import Progress

    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    progress = Progress(Closed(), Closed(), live=True)
    progress.line("DISPATCHED: A-1")  # the reader left: swallowed, output goes nowhere now
    progress.warn("still supervising")
    progress.status([])
    assert progress.live is False
