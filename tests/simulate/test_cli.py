"""``chump simulate`` as a user runs it: the side-by-side table, a real backlog with the
repository's settings, the timeline pages, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chump import cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = cli.main(["simulate", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/gaps.yaml").write_text(
        "gaps:\n"
        "  - {id: R-1, priority: P1, effort: s}\n"
        "  - {id: R-2, priority: P1, effort: m, depends_on: [R-1]}\n"
        "  - {id: R-3, priority: P2, effort: xs}\n"
        "  - {id: R-4, priority: P1, effort: l, status: done}\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[tool.chump]\nmax_parallel = 3\npicker_order = "declared"\nretries = 0\n'
    )
    return tmp_path


def test_the_table_side_by_side(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    status, out, _ = run(capsys, "--gaps", "40", "--seed", "3", "--repo-root", str(repo))
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == (
        "simulated 40 generated gaps (deps density 0.5) on 3 slots, seed 3, backends claude"
    )
    assert lines[2].split()[:2] == ["reference-rounds", "declared"]
    assert lines[3].split()[:2] == ["continuous", "declared"]  # the repository's picker order
    assert lines[4].startswith("  continuous finishes ")


def test_the_repository_backlog(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    status, out, _ = run(
        capsys, "--policy", "continuous", "--no-failures", "--repo-root", str(repo)
    )
    assert status == 0
    assert "docs/gaps.yaml (4 gaps) on 3 slots" in out.splitlines()[0]
    shipped, dispatches = out.splitlines()[2].split()[-2:]
    assert (shipped, dispatches) == ("3", "3")  # R-4 is done already


def test_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    for argv, message in (
        (["--gaps", "0"], "argument --gaps: '0': a whole number from 1 to 100000"),
        (["--deps-density", "-1", "--gaps", "3"], "argument --deps-density: '-1'"),
        (["--gaps", "3", "--timeline", str(repo / "no" / "t.html")], "no such directory"),
        (["--gaps", "3", "--backends", ","], "--backends: give at least one name"),
    ):
        status, _, err = run(capsys, *argv, "--repo-root", str(repo))
        assert status == 2
        assert len(err.strip().splitlines()) == 1
        assert message in err


def test_timeline_pages(capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path) -> None:
    page = tmp_path / "timeline.html"
    status, _out, _ = run(capsys, "--gaps", "12", "--timeline", str(page), "--repo-root", str(repo))
    assert status == 0
    other = tmp_path / "timeline-reference.html"
    assert page.is_file()
    assert other.is_file()
    for html in (page.read_text(), other.read_text()):
        assert "SIM-00011" in html  # the data is inside the page
        assert "<script src=" not in html
