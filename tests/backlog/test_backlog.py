"""Tests for loading and validating the YAML backlog (pytest_chump.backlog)."""

from __future__ import annotations

import gc
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_chump import backlog
from pytest_chump.backlog import Backlog, check_bytes, load_backlog
from pytest_chump.core.errors import BacklogError
from pytest_chump.core.model import EFFORTS, PRIORITIES, STATUSES, Gap, id_problem

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC = ROOT / "pytest_chump" / "selftest" / "synthetic-backlog.yaml"
SAFE_ID_HINT = (
    "is not a safe id: it must start with a letter or digit and use only letters, digits, "
    "'.', '_' and '-'"
)


@pytest.fixture(params=["fast", "composed"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through the regex fast path and again through the composed node tree."""
    if request.param == "composed":
        monkeypatch.setattr(backlog, "_read_fast", lambda text, emit: False)
    return str(request.param)


def problems_of(tmp_path: Path, text: str | bytes) -> list[str]:
    path = tmp_path / "gaps.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    try:
        backlog = load_backlog(path, "b.yaml")
    except BacklogError as exc:
        return exc.lines()
    return [str(p) for p in backlog.problems]


def load_text(tmp_path: Path, text: str) -> Backlog:
    path = tmp_path / "gaps.yaml"
    path.write_text(text, encoding="utf-8")
    return load_backlog(path, "b.yaml").strict()


VALID = [
    pytest.param("gaps:\n  - id: A\n", 1, id="minimal"),
    pytest.param("gaps: []\n", 0, id="empty-list"),
    pytest.param(
        "meta:\n  owner: me\ndomains:\n  - infra\ngaps:\n  - id: A\n    priority: P1\n",
        1,
        id="meta-and-domains-ignored",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    owner: bob\n    estimate: 3\n    notes: {a: [1, 2]}\n",
        1,
        id="unknown-fields-ignored",
    ),
    pytest.param("gaps:\n- id: A\n  depends_on:\n  title: ~\n", 1, id="null-optional-fields"),
    pytest.param("gaps:\n  - id: A\n  - id: B\n    depends_on: [A]\n", 2, id="dependency"),
    pytest.param("# backlog\ngaps:  # all of it\n\n  - id: A # first\n", 1, id="comments"),
]


@pytest.mark.parametrize(("text", "count"), VALID)
def test_valid_backlogs_load(tmp_path: Path, reader: str, text: str, count: int) -> None:
    assert problems_of(tmp_path, text) == []
    assert len(load_text(tmp_path, text).gaps) == count


def test_defaults_and_conversions(tmp_path: Path, reader: str) -> None:
    text = (
        "gaps:\n"
        "  - id: A\n"
        "  - id: B\n"
        "    title: 'Quoted: title'\n"
        "    description: plain text\n"
        "    priority: P0\n"
        "    effort: xl\n"
        "    status: done\n"
        "    kind: system\n"
        "    closed_date: 2024-05-01\n"
        "    depends_on:\n"
        "      - A\n"
        "  - id: C\n"
        "    closed_date: '2024-05-02'\n"
        "    depends_on: [A, B]\n"
    )
    a, b, c = load_text(tmp_path, text).gaps
    assert a == Gap(id="A", line=2)
    assert (a.status, a.kind, a.depends_on, a.title) == ("open", "user", (), "")
    assert b == Gap(
        id="B",
        title="Quoted: title",
        description="plain text",
        priority="P0",
        effort="xl",
        status="done",
        kind="system",
        depends_on=("A",),
        closed_date="2024-05-01",
        line=3,
    )
    assert (c.closed_date, c.depends_on, c.line) == ("2024-05-02", ("A", "B"), 13)


CASES = [
    pytest.param(
        "", ["b.yaml:1: file: is empty (expected a mapping with a 'gaps:' list)"], id="empty"
    ),
    pytest.param(
        "  \n\n", ["b.yaml:1: file: is empty (expected a mapping with a 'gaps:' list)"], id="blank"
    ),
    pytest.param(
        "# only\n  # comments\n",
        ["b.yaml:1: file: is empty (expected a mapping with a 'gaps:' list)"],
        id="comments-only",
    ),
    pytest.param(
        "- id: A\n",
        ["b.yaml:1: gaps: top level must be a mapping with a 'gaps:' list, got a list"],
        id="top-level-list",
    ),
    pytest.param(
        "hello\n",
        ["b.yaml:1: gaps: top level must be a mapping with a 'gaps:' list, got string 'hello'"],
        id="top-level-string",
    ),
    pytest.param(
        "meta: {}\n",
        ["b.yaml:1: gaps: missing (the top level needs a 'gaps:' list)"],
        id="gaps-missing",
    ),
    pytest.param(
        "meta: 1\ngaps: {a: 1}\n", ["b.yaml:2: gaps: must be a list, got a mapping"], id="gaps-map"
    ),
    pytest.param("gaps:\n", ["b.yaml:1: gaps: must be a list, got null"], id="gaps-null"),
    pytest.param(
        "gaps:\n  - just-a-string\n  - id: A\n",
        ["b.yaml:2: gaps[0]: expected a mapping, got string 'just-a-string'"],
        id="entry-not-mapping",
    ),
    pytest.param("gaps:\n  - title: no id\n", ["b.yaml:2: gaps[0].id: missing"], id="id-missing"),
    pytest.param(
        "gaps:\n  - id: 123\n", ["b.yaml:2: gaps[0].id: must be a string, got int 123"], id="id-int"
    ),
    pytest.param(
        "gaps:\n  - id: [A]\n", ["b.yaml:2: gaps[0].id: must be a string, got a list"], id="id-list"
    ),
    pytest.param(
        "gaps:\n  - id:\n", ["b.yaml:2: gaps[0].id: must be a string, got null"], id="id-null"
    ),
    pytest.param(
        "gaps:\n  - id: A\n  - title: t\n    id: A\n",
        ["b.yaml:4: gaps[1].id: duplicate id 'A' (first at line 2)"],
        id="duplicate-id",
    ),
    pytest.param(
        "gaps:\n  - id: A_1\n  - id: a-1\n",
        ["b.yaml:3: gaps[1].id: 'a-1' has the same branch/worktree name as 'A_1' (line 2)"],
        id="slug-collision",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    priority: 1\n",
        ["b.yaml:3: gaps[0].priority: must be a string, got int 1"],
        id="priority-int",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    title: {text: hi}\n",
        ["b.yaml:3: gaps[0].title: must be a string, got a mapping"],
        id="title-mapping",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    description: yes\n",
        ["b.yaml:3: gaps[0].description: must be a string, got bool yes"],
        id="description-bool",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    depends_on: FOO\n",
        ["b.yaml:3: gaps[0].depends_on: must be a list of ids, got string 'FOO'"],
        id="depends-on-scalar",
    ),
    pytest.param(
        "gaps:\n  - id: A\n  - id: B\n    depends_on:\n      - A\n      - 7\n      - [A]\n",
        [
            "b.yaml:6: gaps[1].depends_on[1]: must be an id string, got int 7",
            "b.yaml:7: gaps[1].depends_on[2]: must be an id string, got a list",
        ],
        id="depends-on-items",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    priority: p1\n",
        [
            "b.yaml:3: gaps[0].priority: unknown priority 'p1' "
            "(expected one of P0, P1, P2, P3, P4; did you mean 'P1'?)"
        ],
        id="priority-case",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    effort: huge\n",
        ["b.yaml:3: gaps[0].effort: unknown effort 'huge' (expected one of xs, s, m, l, xl)"],
        id="effort-unknown",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    status: Done\n",
        [
            "b.yaml:3: gaps[0].status: unknown status 'Done' (expected one of "
            + ", ".join(STATUSES)
            + "; did you mean 'done'?)"
        ],
        id="status-case",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    kind: USER\n",
        [
            "b.yaml:3: gaps[0].kind: unknown kind 'USER' "
            "(expected one of user, system; did you mean 'user'?)"
        ],
        id="kind-case",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    closed_date: yesterday\n",
        ["b.yaml:3: gaps[0].closed_date: must be an ISO date (YYYY-MM-DD), got string 'yesterday'"],
        id="closed-date-word",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    closed_date: 2024-02-30\n",
        ["b.yaml:3: gaps[0].closed_date: must be an ISO date (YYYY-MM-DD), got date 2024-02-30"],
        id="closed-date-impossible",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    closed_date: 2024-01-02 10:00:00\n",
        [
            "b.yaml:3: gaps[0].closed_date: must be an ISO date (YYYY-MM-DD), "
            "got date 2024-01-02 10:00:00"
        ],
        id="closed-date-time",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    depends_on:\n      - B\n      - NOPE\n  - id: B\n",
        ["b.yaml:5: gaps[0].depends_on[1]: unknown id 'NOPE'"],
        id="unknown-dependency",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    depends_on: [A]\n",
        ["b.yaml:3: gaps[0].depends_on: dependency cycle A -> A"],
        id="self-dependency",
    ),
    pytest.param(
        "gaps:\n"
        "  - id: A\n    depends_on:\n      - C\n"
        "  - id: B\n    depends_on: [A]\n"
        "  - id: C\n    depends_on: [B]\n",
        ["b.yaml:3: gaps[0].depends_on: dependency cycle A -> C -> B -> A"],
        id="three-cycle",
    ),
    pytest.param(
        "gaps:\n"
        "  - id: X\n    depends_on: [Y]\n"
        "  - id: A\n    depends_on: [B]\n"
        "  - id: B\n    depends_on: [A, X]\n"
        "  - id: Y\n    depends_on: [X]\n",
        [
            "b.yaml:3: gaps[0].depends_on: dependency cycle X -> Y -> X",
            "b.yaml:5: gaps[1].depends_on: dependency cycle A -> B -> A",
        ],
        id="two-cycles-each-once",
    ),
    pytest.param(
        "gaps:\n  - id: ../x\n  - id: A\n    depends_on: ['../x', '123']\n  - id: 123\n",
        [
            f"b.yaml:2: gaps[0].id: '../x' {SAFE_ID_HINT}",
            "b.yaml:5: gaps[2].id: must be a string, got int 123",
        ],
        id="invalid-ids-are-known-for-dependencies",
    ),
    pytest.param(
        "gaps:\n  - id: A\n    depends_on: [B]\n  - id: B\n  - id: B\n    depends_on: [A]\n",
        ["b.yaml:5: gaps[2].id: duplicate id 'B' (first at line 4)"],
        id="dependencies-resolve-to-first-duplicate",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_problems(tmp_path: Path, reader: str, text: str, expected: list[str]) -> None:
    assert problems_of(tmp_path, text) == expected


def test_one_cycle_one_duplicate_one_unsafe_id_give_exactly_three_lines(
    tmp_path: Path, reader: str
) -> None:
    text = (
        "gaps:\n"
        "  - id: A\n    depends_on: [B]\n"
        "  - id: B\n    depends_on: [A]\n"
        "  - id: C\n"
        "  - id: C\n"
        "  - id: ../x\n"
    )
    assert problems_of(tmp_path, text) == [
        "b.yaml:3: gaps[0].depends_on: dependency cycle A -> B -> A",
        "b.yaml:7: gaps[3].id: duplicate id 'C' (first at line 6)",
        f"b.yaml:8: gaps[4].id: '../x' {SAFE_ID_HINT}",
    ]


def test_independent_problems_are_all_reported_in_file_order(tmp_path: Path, reader: str) -> None:
    text = (
        "gaps:\n"
        "  - id: A\n    priority: P9\n    effort: L\n"
        "  - title: nameless\n"
        "  - 42\n"
        "  - id: B\n    depends_on: [A, GHOST]\n    status: 3\n"
    )
    assert problems_of(tmp_path, text) == [
        "b.yaml:3: gaps[0].priority: unknown priority 'P9' (expected one of P0, P1, P2, P3, P4)",
        "b.yaml:4: gaps[0].effort: unknown effort 'L' "
        "(expected one of xs, s, m, l, xl; did you mean 'l'?)",
        "b.yaml:5: gaps[1].id: missing",
        "b.yaml:6: gaps[2]: expected a mapping, got int 42",
        "b.yaml:8: gaps[3].depends_on[1]: unknown id 'GHOST'",
        "b.yaml:9: gaps[3].status: must be a string, got int 3",
    ]


UNSAFE_IDS = [
    pytest.param("../x", "'../x'", id="dot-dot"),
    pytest.param("a/b", "'a/b'", id="slash"),
    pytest.param("a b", "'a b'", id="space"),
    pytest.param("-x", '"-x"', id="leading-dash"),
    pytest.param("x\x01", '"x\\x01"', id="control-character"),
    pytest.param("a" * 101, "a" * 101, id="101-characters"),
    pytest.param("foo.lock", "foo.lock", id="dot-lock"),
]


@pytest.mark.parametrize(("gap_id", "written"), UNSAFE_IDS)
def test_unsafe_ids(tmp_path: Path, reader: str, gap_id: str, written: str) -> None:
    problem = id_problem(gap_id)
    assert problem is not None
    assert problems_of(tmp_path, f"gaps:\n  - id: {written}\n") == [
        f"b.yaml:2: gaps[0].id: {problem}"
    ]


YAML_ERRORS = [
    pytest.param("gaps:\n  - id: A\n   title: [\n", 3, id="bad-indent"),
    pytest.param("gaps: [A\n", 2, id="unclosed-flow"),
    pytest.param("gaps:\n  - id: 'open\n", 3, id="unclosed-quote"),
    pytest.param("gaps:\n\t- id: A\n", 2, id="tab"),
    pytest.param("gaps: []\n---\ngaps: []\n", 2, id="two-documents"),
    pytest.param("gaps:\n  - id: A\x01\n", 2, id="control-character"),
]


@pytest.mark.parametrize(("text", "line"), YAML_ERRORS)
def test_yaml_errors_are_one_line(tmp_path: Path, reader: str, text: str, line: int) -> None:
    (problem,) = problems_of(tmp_path, text)
    assert re.fullmatch(rf"b\.yaml:{line}: yaml: [^\n]+", problem), problem


def test_two_documents_are_named(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "gaps: []\n---\ngaps: []\n")
    assert "document" in problem


def test_not_utf8(tmp_path: Path) -> None:
    data = b"gaps:\n  - id: A\n    title: caf\xe9\n"
    assert problems_of(tmp_path, data) == [
        "b.yaml:3: file: not valid UTF-8 (byte 0xe9 at offset 30)"
    ]


def test_missing_file_uses_the_path_by_default(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(BacklogError) as caught:
        load_backlog(path)
    assert caught.value.lines() == [f"{path}:1: file: not found"]


def test_a_directory_without_backlog_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("gaps: []\n")
    with pytest.raises(BacklogError) as caught:
        load_backlog(tmp_path, "b")
    assert caught.value.lines() == ["b:1: file: no *.yaml or *.yml files in this directory"]


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gaps.yaml"
    path.write_text("gaps: []\n")
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("running as a user who reads every file")
    with pytest.raises(BacklogError) as caught:
        load_backlog(path, "b.yaml")
    (line,) = caught.value.lines()
    assert line.startswith("b.yaml:1: file: cannot read: ")


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "gaps.yaml"
    path.write_bytes("\ufeffgaps:\r\n  - id: A\r\n    title: x\r\n".encode())
    assert load_backlog(path).gaps == (Gap(id="A", title="x", line=2),)


def test_synthetic_fixture_loads(reader: str) -> None:
    loaded = load_backlog(SYNTHETIC)
    assert [gap.id for gap in loaded.gaps] == [f"SYNTH-00{n}" for n in range(1, 5)]
    assert [gap.priority for gap in loaded.gaps] == ["P1", "P1", "P2", "P2"]
    assert loaded.gaps[0].title.startswith("synthetic noop gap 1 — touch")


def test_backlog_lookups(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, "gaps:\n- id: A\n  status: done\n- id: B\n")
    assert loaded.path == tmp_path / "gaps.yaml"
    assert set(loaded.by_id()) == {"A", "B"}
    assert loaded.by_id()["B"].line == 4
    assert loaded.done_ids() == frozenset({"A"})


def test_check_bytes_reports_without_raising() -> None:
    clean = check_bytes(b"gaps:\n  - id: A\n", "x")
    assert (clean.gaps, clean.problems) == ((Gap(id="A", line=2),), ())
    broken = check_bytes(b"gaps:\n  - {}\n  - id: B\n", "x")
    assert [str(p) for p in broken.problems] == ["x:2: gaps[0].id: missing"]
    assert [g.id for g in broken.dispatchable()] == ["B"]
    assert gc.isenabled()


def _random_backlog(rng: random.Random, count: int) -> list[Gap]:
    gaps = []
    for n in range(count):
        deps = rng.sample(range(n), min(n, rng.randint(0, 3))) if rng.random() < 0.3 else []
        gaps.append(
            Gap(
                id=f"G-{n:05d}",
                title=rng.choice(["fix it", "it's: quoted", "with # hash", "yes", "0.5"]),
                priority=rng.choice(PRIORITIES),
                effort=rng.choice(EFFORTS),
                status=rng.choice(STATUSES),
                depends_on=tuple(f"G-{d:05d}" for d in deps),
                closed_date=rng.choice(["", "2024-03-01"]),
            )
        )
    return gaps


def _block_entry(gap: Gap) -> list[str]:
    title = gap.title if gap.title == "fix it" else "'" + gap.title.replace("'", "''") + "'"
    lines = [f"  - id: {gap.id}", f"    title: {title}"]
    lines += [f"    priority: {gap.priority}", f"    effort: {gap.effort}"]
    lines += [f"    status: {gap.status}"]
    if gap.closed_date:
        lines.append(f"    closed_date: {gap.closed_date}")
    if gap.depends_on:
        lines.append(f"    depends_on: [{', '.join(gap.depends_on)}]")
    return lines


def _flow_entry(gap: Gap) -> list[str]:
    title = gap.title.replace("\\", "\\\\").replace('"', '\\"')
    deps = ", ".join(gap.depends_on)
    fields = f'id: {gap.id}, title: "{title}", priority: {gap.priority}, effort: {gap.effort}'
    fields += f", status: {gap.status}, depends_on: [{deps}]"
    if gap.closed_date:
        fields += f", closed_date: '{gap.closed_date}'"
    return [f"  - {{{fields}}}"]


@pytest.mark.parametrize("layout", [_block_entry, _flow_entry], ids=["block", "flow"])
def test_generated_backlog_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: Callable[[Gap], list[str]]
) -> None:
    """The block layout takes the fast path, the flow layout the composed tree: same gaps."""
    lines, expected = ["meta:", "  generated: true", "gaps:"], []
    for gap in _random_backlog(random.Random(7), 2000):
        expected.append(replace(gap, line=len(lines) + 1))
        lines += layout(gap)
    took_fast_path: list[bool] = []
    read_fast = backlog._read_fast

    def spy(text: str, emit: Callable[[Any], None]) -> bool:
        took_fast_path.append(read_fast(text, emit))
        return took_fast_path[-1]

    monkeypatch.setattr(backlog, "_read_fast", spy)
    loaded = load_text(tmp_path, "\n".join(lines) + "\n")
    assert loaded.gaps == tuple(expected)
    assert took_fast_path == [layout is _block_entry]


def test_importing_the_module_does_not_import_yaml() -> None:
    code = "import sys, pytest_chump.backlog; print('yaml' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


TRICKY_VALUES = [
    "P1",
    "p1",
    "open",
    "yes",
    "~",
    "null",
    "1",
    "1.5",
    "0x1F",
    "2024-01-02",
    "'quoted'",
    "'it''s'",
    '"dq"',
    "a # comment",
    "a#b",
    "a:b",
    "a: b",
    "-x",
    "[A, B]",
    "[]",
    "[A,B]",
    "[A, [B]]",
    "[1, 2]",
    "{a: 1}",
    "&x y",
    "*x",
    "!!str 1",
    "title — dash",
    "a  b",
    "é",
    "'unterminated",
    "%x",
    "@x",
    ":x",
    "on",
    ".inf",
    "../x",
    "'a' b",
    "[A] b",
    "[ A , B ]",
]


def _tricky_backlog(rng: random.Random) -> str:
    lines = ["gaps:"]
    keys = ["id", "title", "priority", "status", "depends_on", "closed_date", "kind", "extra"]
    for n in range(rng.randint(1, 4)):
        for k, key in enumerate(["id", *rng.sample(keys, 3)]):
            lead = "  - " if k == 0 else "    "
            value = rng.choice(["A", "B", f"G{n}", *TRICKY_VALUES])
            if key == "depends_on" and rng.random() < 0.4:
                lines += [f"{lead}{key}:", f"      - {value}", "      - A"]
            else:
                lines.append(f"{lead}{key}: {value}")
    return "\n".join(lines) + "\n"


def test_fast_path_and_composed_tree_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    texts = [_tricky_backlog(rng).encode() for _ in range(300)]
    fast = [check_bytes(text, "b.yaml") for text in texts]
    monkeypatch.setattr(backlog, "_read_fast", lambda text, emit: False)
    assert [check_bytes(text, "b.yaml") for text in texts] == fast
