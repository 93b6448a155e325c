"""Backlog directories (one or many gaps per file), quarantine of gaps with problems, status
aliases, and the backlog at a git ref — file and directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_chump.backlog import check_mappings, load_backlog
from pytest_chump.backlog.at_ref import backlog_at, done_on_base
from pytest_chump.core.errors import BacklogError
from pytest_chump.core.remote_refs import fetch
from tests.gitrepos import git, make_origin


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_directory_reads_every_shape_in_path_order(tmp_path: Path) -> None:
    gaps = write(
        tmp_path / "gaps",
        {
            "B-1.yaml": "- id: B-1\n  priority: P1\n  depends_on: [A-1]\n",  # a one-gap list
            "A-1.yml": "id: A-1\npriority: P0\nstatus: done\n",  # one gap's mapping
            "more/C.yaml": "gaps:\n  - id: C-1\n  - id: C-2\n    depends_on: [B-1]\n",
            "notes.md": "id: not-a-gap\n",
            ".hidden/X.yaml": "- id: X-1\n",
        },
    )
    backlog = load_backlog(gaps, "gaps")
    assert [g.id for g in backlog.gaps] == ["A-1", "B-1", "C-1", "C-2"]
    assert backlog.problems == ()
    assert backlog.by_id()["C-2"].origin == "gaps/more/C.yaml"
    assert backlog.done_ids() == {"A-1"}


def test_problems_name_their_file_and_only_quarantine_their_gap(tmp_path: Path) -> None:
    gaps = write(
        tmp_path / "gaps",
        {
            "a.yaml": "- id: A-1\n  priority: INFRA:P2\n",
            "b.yaml": "- id: B-1\n  depends_on: [GONE-1]\n",
            "c.yaml": "- id: A-1\n",  # a duplicate in another file
            "d.yaml": "- id: bad id; rm -rf /\n",
            "e.yaml": "[unclosed\n",  # a file that is not YAML: its own problem, not fatal
            "f.yaml": "- id: OK-1\n  priority: P1\n",
        },
    )
    backlog = load_backlog(gaps, "gaps")
    lines = [str(p) for p in backlog.problems]
    assert lines[0].startswith("gaps/a.yaml:2: gaps[0].priority: unknown priority 'INFRA:P2'")
    assert lines[1] == "gaps/b.yaml:2: gaps[0].depends_on[0]: unknown id 'GONE-1'"
    assert lines[2] == "gaps/c.yaml:1: gaps[0].id: duplicate id 'A-1' (first at gaps/a.yaml:1)"
    assert lines[3].startswith("gaps/d.yaml:1: gaps[0].id: 'bad id; rm -rf /' is not a safe id")
    assert lines[4].startswith("gaps/e.yaml:")
    assert not any(p.fatal for p in backlog.problems)
    assert backlog.quarantined == {"A-1", "B-1", "bad id; rm -rf /"}
    assert [g.id for g in backlog.dispatchable()] == ["OK-1"]


def test_hostile_file_names_are_shown_escaped_and_never_become_ids(tmp_path: Path) -> None:
    gaps = tmp_path / "gaps"
    gaps.mkdir()
    names = ["\x1b]0;pwned\x07.yaml", "line\nbreak.yaml", "..evil.yaml", "-rf.yaml", "ok.yaml"]
    for i, name in enumerate(names):
        (gaps / name).write_text(f"- id: G-{i}\n  priority: [P1]\n")
    raw = os.fsencode(gaps) + b"/\xff\xfe.yaml"
    with open(raw, "wb") as fh:
        fh.write(b"- id: G-9\n  priority: [P1]\n")
    backlog = load_backlog(gaps, "gaps")
    assert sorted(g.id for g in backlog.gaps) == [*(f"G-{i}" for i in range(5)), "G-9"]
    shown = "\n".join(str(p) for p in backlog.problems)
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "\xff" not in shown
    assert "gaps/\\x1b]0;pwned\\x07.yaml:2:" in shown
    assert "gaps/line\\x0abreak.yaml:2:" in shown
    assert "gaps/\\xff\\xfe.yaml:2:" in shown
    assert len(shown.splitlines()) == 6  # one line per problem, whatever the names hold


def test_many_generated_one_gap_files(tmp_path: Path) -> None:
    gaps = tmp_path / "gaps"
    gaps.mkdir()
    hostile = ["\x1b[2J", "\n", "\u202e", " ; rm -rf ~", "\\", "..", "-"]
    for n in range(3000):
        deps = f"\n  depends_on: [G-{n - 1:04d}]" if n % 3 else ""
        name = f"G-{n:04d}{hostile[n % len(hostile)] if n % 5 == 0 else ''}.yaml"
        (gaps / name).write_text(f"- id: G-{n:04d}\n  priority: P2{deps}\n")
    backlog = load_backlog(gaps, "gaps")
    assert len(backlog.gaps) == 3000
    assert backlog.problems == ()
    assert [g.id for g in backlog.gaps] == [f"G-{n:04d}" for n in range(3000)]  # path order


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside", {"secret.yaml": "- id: S-1\n"})
    gaps = write(tmp_path / "gaps", {"a.yaml": "- id: A-1\n"})
    (gaps / "link.yaml").symlink_to(outside / "secret.yaml")
    (gaps / "dir").symlink_to(outside)
    assert [g.id for g in load_backlog(gaps, "gaps").gaps] == ["A-1"]


def test_an_empty_directory_is_refused_whole(tmp_path: Path) -> None:
    (tmp_path / "gaps").mkdir()
    with pytest.raises(BacklogError):
        load_backlog(tmp_path / "gaps", "gaps")


def test_unknown_statuses_are_not_open_and_aliases_map_them(tmp_path: Path) -> None:
    path = tmp_path / "gaps.yaml"
    path.write_text(
        "gaps:\n  - {id: A-1, status: shipped}\n  - {id: B-1, priority: P1, depends_on: [A-1]}\n"
    )
    plain = load_backlog(path, "b.yaml")
    assert plain.by_id()["A-1"].status == "shipped"  # kept as written, never "open"
    assert plain.quarantined == {"A-1"}
    assert "unknown status 'shipped'" in str(plain.problems[0])
    assert plain.done_ids() == set()
    aliased = load_backlog(path, "b.yaml", {"shipped": "done"})
    assert aliased.problems == ()
    assert aliased.done_ids() == {"A-1"}


def test_strict_refuses_any_problem(tmp_path: Path) -> None:
    path = tmp_path / "gaps.yaml"
    path.write_text("gaps:\n  - {id: A-1, priority: P9}\n  - {id: B-1}\n")
    backlog = load_backlog(path, "b.yaml")
    with pytest.raises(BacklogError) as caught:
        backlog.strict()
    assert caught.value.lines() == [str(p) for p in backlog.problems]


def test_mappings_from_another_source_get_the_same_checks() -> None:
    backlog = check_mappings(
        [
            ("#1", {"id": "GH-1", "priority": "P1", "depends_on": ["GH-9"]}),
            ("#2", {"id": "GH-2", "priority": 1, "title": None}),
            ("#3", {"id": "GH-3", "priority": "P2", "effort": "s"}),
        ],
        "github:acme/app",
    )
    assert sorted(str(p) for p in backlog.problems) == [
        "github:acme/app: #1.depends_on[0]: unknown id 'GH-9'",
        "github:acme/app: #2.priority: must be a string, got int 1",
    ]
    assert [g.id for g in backlog.dispatchable()] == ["GH-3"]


# --- at a git ref ------------------------------------------------------------------------


def test_directory_at_a_ref_is_read_from_git_not_the_work_tree(tmp_path: Path) -> None:
    _, clone = make_origin(tmp_path)
    write(clone / "docs/gaps", {"A-1.yaml": "- id: A-1\n  status: done\n", "B.yaml": "- id: B-1\n"})
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "gaps")
    (clone / "docs/gaps/B.yaml").write_text("- id: B-1\n  status: done\n")  # not committed
    (clone / "docs/gaps/C.yaml").write_text("- id: C-1\n")  # not committed
    at_head = backlog_at(clone, "HEAD", clone / "docs/gaps")
    assert at_head is not None
    assert [g.id for g in at_head.gaps] == ["A-1", "B-1"]
    assert at_head.by_id()["A-1"].origin == "docs/gaps/A-1.yaml"
    assert done_on_base(clone, "HEAD", clone / "docs/gaps") == {"A-1"}
    assert backlog_at(clone, "HEAD~1", clone / "docs/gaps") is None  # not there yet


def test_done_on_a_remote_base_reads_chumps_fetched_copy(tmp_path: Path) -> None:
    """The loop's poll fetches into chump's namespace only: a gap done on origin is seen
    there although the user's origin/main is older."""
    origin, clone = make_origin(tmp_path)
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(origin), str(other))
    gap = "gaps:\n  - {id: A-1, title: a, priority: P1, effort: s, status: done}\n"
    (other / "docs/gaps.yaml").write_text(gap, encoding="utf-8")
    git(other, "commit", "-qam", "A-1 done")
    git(other, "push", "--quiet", "origin", "main")
    assert done_on_base(clone, "origin/main", clone / "docs/gaps.yaml") == frozenset()
    fetch(clone, "origin")
    assert done_on_base(clone, "origin/main", clone / "docs/gaps.yaml") == {"A-1"}
    assert git(clone, "rev-parse", "origin/main") != git(other, "rev-parse", "HEAD")


def test_dry_run_picks_what_the_reference_picker_picks_on_a_legacy_directory(
    tmp_path: Path,
) -> None:
    """A small directory shaped like the upstream one (the benchmark's generator): unknown
    statuses, bad priorities, dangling dependencies, unsafe ids and hostile file names."""
    from benchmarks.bench_gap_directory import chump_pick, generate, raw_entries, reference_pick

    root = tmp_path / "docs" / "gaps"
    root.mkdir(parents=True)
    for seed in range(3):
        for old in root.iterdir():
            old.unlink()
        generate(root, 600, seed=seed)
        assert chump_pick(root, tmp_path, 40) == reference_pick(raw_entries(root), 40)
