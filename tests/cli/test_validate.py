"""``chump validate``: the strict linter — every problem, ``--json``, ``--new-since REF``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_chump.cli import main
from tests.gitrepos import git, make_origin

LEGACY = """\
gaps:
  - {id: OLD-1, status: shipped}
  - {id: OLD-2, priority: P1, depends_on: [GONE]}
  - {id: NEW-1, priority: P1}
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _, clone = make_origin(tmp_path)
    monkeypatch.chdir(clone)  # paths are shown relative to the current directory
    (clone / "docs/gaps.yaml").write_text(LEGACY)
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "legacy backlog")
    return clone


def test_every_problem_is_reported_and_exit_2(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    status, out, err = run(capsys, "validate", "--repo-root", str(repo))
    assert (status, out) == (2, "")
    assert [line.split(": ", 2)[1] for line in err] == ["gaps[0].status", "gaps[1].depends_on[0]"]


def test_json_lists_problems_with_their_gaps(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    status, out, _ = run(capsys, "validate", "--repo-root", str(repo), "--json")
    data = json.loads(out)
    assert status == 2
    assert (data["ok"], data["gaps"], data["quarantined"]) == (False, 3, ["OLD-1", "OLD-2"])
    first = data["problems"][0]
    assert (first["line"], first["field"], first["gap_id"], first["fatal"]) == (
        2,
        "gaps[0].status",
        "OLD-1",
        False,
    )
    assert first["text"].startswith("docs/gaps.yaml:2: gaps[0].status: unknown status")


def test_json_of_an_unreadable_backlog(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/gaps.yaml").write_text("gaps: [x\n")
    status, out, _ = run(capsys, "validate", "--repo-root", str(tmp_path), "--json")
    data = json.loads(out)
    assert status == 2
    assert data["ok"] is False
    assert data["fatal"] is True
    assert data["problems"][0]["field"] == "yaml"


def test_new_since_reports_only_new_problems_even_when_lines_moved(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    moved = "gaps:\n  - {id: FIRST, priority: P0}\n" + LEGACY.split("\n", 1)[1]
    (repo / "docs/gaps.yaml").write_text(moved)
    status, out, _ = run(capsys, "validate", "--repo-root", str(repo), "--new-since", "HEAD")
    assert status == 0
    assert out.strip() == "docs/gaps.yaml: ok (4 gaps; 2 problems already at HEAD)"
    (repo / "docs/gaps.yaml").write_text(moved + "  - {id: BAD-1, effort: huge}\n")
    status, out, err = run(capsys, "validate", "--repo-root", str(repo), "--new-since", "HEAD")
    assert status == 2
    assert len(err) == 1
    assert "gaps[4].effort: unknown effort 'huge'" in err[0]


def test_new_since_a_ref_without_the_backlog_counts_everything(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    status, _, err = run(capsys, "validate", "--repo-root", str(repo), "--new-since", "HEAD~1")
    assert status == 2
    assert len(err) == 2


def test_ref_checks_the_committed_copy(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    (repo / "docs/gaps.yaml").write_text("gaps: []\n")
    status, _, err = run(capsys, "validate", "--repo-root", str(repo), "--ref", "HEAD")
    assert status == 2
    assert len(err) == 2
    status, out, _ = run(capsys, "validate", "--repo-root", str(repo))
    assert (status, out.strip()) == (0, "docs/gaps.yaml: ok (0 gaps)")


def test_validate_a_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    gaps = tmp_path / "docs/gaps"
    gaps.mkdir(parents=True)
    (gaps / "A-1.yaml").write_text("- id: A-1\n")
    (gaps / "B-1.yaml").write_text("- id: B-1\n  priority: P7\n")
    status, _, err = run(capsys, "validate", "--repo-root", str(tmp_path), "--backlog", "docs/gaps")
    assert status == 2
    assert err[0].startswith(f"{gaps}/B-1.yaml:2: gaps[0].priority: unknown priority 'P7'")


def test_new_since_keys_ignore_line_references_and_count_repeats(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    legacy = "gaps:\n  - {id: D-1}\n  - {id: D-1}\n  - {title: no id}\n"
    (repo / "docs/gaps.yaml").write_text(legacy)
    git(repo, "commit", "-qam", "legacy duplicates")
    (repo / "docs/gaps.yaml").write_text("# a comment moves every line\n" + legacy)
    status, out, _ = run(capsys, "validate", "--new-since", "HEAD")
    assert status == 0, out
    (repo / "docs/gaps.yaml").write_text(legacy + "  - {title: another without id}\n")
    status, _, err = run(capsys, "validate", "--new-since", "HEAD")
    assert status == 2
    assert len(err) == 1
    assert "gaps[3].id: missing" in err[0]


def test_an_unknown_ref_is_a_usage_error(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    for flag in ("--new-since", "--ref"):
        status, _, err = run(capsys, "validate", flag, "no-such-ref")
        assert status == 2
        assert err == [
            f"chump: error: 'no-such-ref': unknown ref (not a commit in {repo.resolve()})"
        ]


def test_control_characters_in_problems_are_escaped(
    capsys: pytest.CaptureFixture[str], repo: Path
) -> None:
    (repo / "docs/gaps.yaml").write_text('gaps:\n  - {id: A-1, title: !x "\\e[32mgreen"}\n')
    status, _, err = run(capsys, "validate")
    assert status == 2
    assert "\x1b" not in "\n".join(err)
    assert "\\x1b[32m" in err[0]
