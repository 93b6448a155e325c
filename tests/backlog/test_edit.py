"""Marking a gap done in place: only its status/closed_* lines change, layout and comments stay,
and anything the edit cannot do safely is refused (None), never half-written."""

from __future__ import annotations

import pytest

from pytest_chump.backlog import check_bytes, check_files
from pytest_chump.backlog.edit import Done, mark_done

BLOCK = """\
# our backlog: hand-written, comments matter
gaps:
  - id: A-1   # the first one
    title: "add"   # quoted, with a comment
    status: open
    priority: P1

  # between entries
  - id: B-1
    title: b
    description: |
      several
      lines
  - {id: C-1, status: open, priority: P2}
  - {id: D-1}
"""


def gap(text: str, gap_id: str):  # type: ignore[no-untyped-def]
    return next(g for g in check_files([("f", text.encode())]).gaps if g.id == gap_id)


def changed(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(), after.splitlines()
    return [(a, b) for a, b in zip(old, new, strict=False) if a != b]


def test_an_existing_status_line_is_replaced_and_closed_fields_added() -> None:
    after = mark_done(BLOCK, gap(BLOCK, "A-1"), Done("2026-11-28", 12))
    assert after is not None
    assert after.splitlines()[:9] == [
        "# our backlog: hand-written, comments matter",
        "gaps:",
        "  - id: A-1   # the first one",
        '    title: "add"   # quoted, with a comment',
        "    status: done",
        "    priority: P1",
        "    closed_date: 2026-11-28",
        "    closed_pr: 12",
        "",
    ]
    assert after.splitlines()[9:] == BLOCK.splitlines()[7:]
    done = check_bytes(after.encode(), "b").by_id()["A-1"]
    assert (done.status, done.closed_date) == ("done", "2026-11-28")


def test_fields_are_added_after_a_block_scalar() -> None:
    after = mark_done(BLOCK, gap(BLOCK, "B-1"), Done("2026-11-28"))
    assert after is not None
    lines = after.splitlines()
    at = lines.index("      lines")
    assert lines[at + 1 : at + 3] == ["    status: done", "    closed_date: 2026-11-28"]
    assert check_bytes(after.encode(), "b").by_id()["B-1"].description == "several\nlines\n"


@pytest.mark.parametrize(
    ("gap_id", "line"),
    [
        ("C-1", "  - {id: C-1, status: done, priority: P2, closed_date: 2026-11-28}"),
        ("D-1", "  - {id: D-1, status: done, closed_date: 2026-11-28}"),
    ],
)
def test_flow_mappings_are_edited_inside_their_braces(gap_id: str, line: str) -> None:
    after = mark_done(BLOCK, gap(BLOCK, gap_id), Done("2026-11-28"))
    assert after is not None
    assert [new for _, new in changed(BLOCK, after)] == [line]


def test_files_of_a_backlog_directory() -> None:
    one_gap_list = "- id: X-1\n  title: t\n  status: open\n"
    after = mark_done(one_gap_list, gap(one_gap_list, "X-1"), Done("2026-11-28"))
    assert after == "- id: X-1\n  title: t\n  status: done\n  closed_date: 2026-11-28\n"
    mapping = "id: Y-1\ntitle: t\n"
    after = mark_done(mapping, gap(mapping, "Y-1"), Done("2026-11-28"))
    assert after == "id: Y-1\ntitle: t\nstatus: done\nclosed_date: 2026-11-28\n"


def test_what_it_cannot_edit_safely_is_refused() -> None:
    multiline = "gaps:\n  - id: M-1\n    status:\n      open\n"
    assert mark_done(multiline, gap(multiline, "M-1"), Done("2026-11-28")) is None
    spread = "gaps:\n  - {id: S-1,\n     status: open}\n"
    assert mark_done(spread, gap(spread, "S-1"), Done("2026-11-28")) is None
    other = check_bytes(b"gaps:\n  - id: Z-9\n", "b").gaps[0]
    assert mark_done(BLOCK, other, Done("2026-11-28")) is None  # not this file's gap


def test_crlf_files_keep_their_line_ends_and_comments_stay() -> None:
    text = "gaps:\r\n  - id: R-1\r\n    status: open  # keep this note\r\n    priority: P1\r\n"
    after = mark_done(text, gap(text, "R-1"), Done("2026-11-28", 3))
    assert after == (
        "gaps:\r\n  - id: R-1\r\n    status: done  # keep this note\r\n    priority: P1\r\n"
        "    closed_date: 2026-11-28\r\n    closed_pr: 3\r\n"
    )


def test_a_key_spelled_another_way_is_refused_not_doubled() -> None:
    for odd in ('    "status": open\n', "    status\t: open\n"):
        text = "gaps:\n  - id: Q-1\n" + odd
        assert mark_done(text, gap(text, "Q-1"), Done("2026-11-28")) is None
