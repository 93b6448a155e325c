"""``chump validate`` and ``chump dispatch`` (dry run): output, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_chump.cli import main
from tests.conftest import SYNTHETIC

THREE_PROBLEMS = """\
gaps:
  - id: ../x
    priority: P1
  - id: A-1
    priority: P1
    depends_on: [A-2]
  - id: A-2
    priority: P1
    depends_on: [A-1]
  - id: A-1
    priority: P2
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], list[str]]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.splitlines()


def test_validate_synthetic_fixture_passes(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "validate", "--backlog", str(SYNTHETIC))
    assert status == 0, err
    assert out[-1].endswith(": ok (4 gaps)")


def test_validate_reports_cycle_duplicate_and_unsafe_id(
    capsys: pytest.CaptureFixture[str], write_backlog: Callable[..., Path], tmp_path: Path
) -> None:
    write_backlog(THREE_PROBLEMS)
    status, out, err = run(capsys, "validate", "--repo-root", str(tmp_path))
    assert status == 2
    assert out == []
    assert len(err) == 3, err
    joined = "\n".join(err)
    assert "'../x'" in joined
    assert "duplicate id 'A-1'" in joined
    assert "dependency cycle A-1 -> A-2 -> A-1" in joined
    for line in err:
        assert not line.startswith("chump: error: ")  # path:line: field: message, as is
        assert "gaps.yaml:" in line


def test_validate_missing_backlog(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "validate", "--repo-root", str(tmp_path))
    assert status == 2
    assert err == [f"{tmp_path / 'docs/gaps.yaml'}:1: file: not found"]


def test_dispatch_dry_run_on_synthetic_fixture(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, err = run(
        capsys, "dispatch", "--repo-root", str(tmp_path), "--backlog", str(SYNTHETIC)
    )
    assert status == 0, err
    assert out[0] == (
        "chump-orchestrator (MVP complete, dry-run): 4 total gaps, 4 open, 0 done; "
        "would dispatch 2 of max-parallel 2"
    )
    wt = tmp_path / ".chump/worktrees"
    assert out[1:] == [
        f"WOULD DISPATCH: SYNTH-001 (prio=P1 effort=s) in {wt}/synth-001  "
        "-- synthetic noop gap 1 — touch /tmp/synth-test/SYNTH-001",
        f"WOULD DISPATCH: SYNTH-002 (prio=P1 effort=s) in {wt}/synth-002  "
        "-- synthetic noop gap 2 — touch /tmp/synth-test/SYNTH-002",
    ]


def test_dispatch_respects_config_from_pyproject(
    capsys: pytest.CaptureFixture[str], write_backlog: Callable[..., Path], tmp_path: Path
) -> None:
    write_backlog(SYNTHETIC.read_text(), name="work/backlog.yaml")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.chump]\nbacklog = 'work/backlog.yaml'\nmax_parallel = 3\n"
    )
    status, out, _ = run(capsys, "dispatch", "--repo-root", str(tmp_path))
    assert status == 0
    assert out[0].endswith("would dispatch 3 of max-parallel 3")
    _, out, _ = run(capsys, "dispatch", "--repo-root", str(tmp_path), "--max-parallel", "1")
    assert out[0].endswith("would dispatch 1 of max-parallel 1")


def test_dispatch_with_nothing_ready_says_so(
    capsys: pytest.CaptureFixture[str], write_backlog: Callable[..., Path], tmp_path: Path
) -> None:
    write_backlog("gaps:\n  - id: A-1\n    priority: P3\n")
    status, out, err = run(capsys, "dispatch", "--repo-root", str(tmp_path))
    assert status == 0
    assert out == [
        "chump-orchestrator (MVP complete, dry-run): 1 total gaps, 1 open, 0 done; "
        "would dispatch 0 of max-parallel 2",
        "nothing to dispatch: none of the 1 open gaps is ready (`chump ready --explain` says why)",
    ]
    assert err == []


def test_dispatch_quarantines_gaps_with_problems_and_says_so_once(
    capsys: pytest.CaptureFixture[str], write_backlog: Callable[..., Path], tmp_path: Path
) -> None:
    write_backlog(THREE_PROBLEMS + "  - id: B-1\n    priority: P1\n")
    status, out, err = run(capsys, "dispatch", "--repo-root", str(tmp_path))
    assert status == 0
    assert err == [
        "chump: 3 gaps with problems are quarantined (never dispatched); "
        "`chump validate` lists the problems"
    ]
    assert [line.split()[2] for line in out[1:]] == ["B-1"]  # the only gap without a problem


def test_dispatch_strict_never_starts_on_a_backlog_with_problems(
    capsys: pytest.CaptureFixture[str], write_backlog: Callable[..., Path], tmp_path: Path
) -> None:
    write_backlog(THREE_PROBLEMS)
    for argv in (["--strict"], ["--strict", "true"]):
        status, out, err = run(capsys, "dispatch", "--repo-root", str(tmp_path), *argv)
        assert status == 2
        assert out == []
        assert len(err) == 3


def test_dispatch_refuses_a_backlog_that_cannot_be_read_at_all(
    capsys: pytest.CaptureFixture[str], write_backlog: Callable[..., Path], tmp_path: Path
) -> None:
    write_backlog("gaps: [unclosed\n")
    status, out, err = run(capsys, "dispatch", "--repo-root", str(tmp_path))
    assert (status, out) == (2, [])
    assert err[0].startswith(f"{tmp_path / 'docs/gaps.yaml'}:")


def test_watch_without_execute_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, err = run(
        capsys, "dispatch", "--repo-root", str(tmp_path), "--backlog", str(SYNTHETIC), "--watch"
    )
    assert (status, out) == (2, [])
    assert err == ["chump: error: --watch needs --no-dry-run: a dry run starts nothing to watch"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dispatch", "--max-parallel", "x"], "--max-parallel: expected an integer, got 'x'"),
        (["dispatch", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
        (
            ["dispatch", "--repo-root", "/nonexistent/x"],
            "--repo-root: /nonexistent/x: not a directory",
        ),
        (["dispatch", "--dry-run", "--no-dry-run"], "not allowed with argument"),
    ],
)
def test_user_mistakes_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert out == []
    assert status == 2
    assert len(err) == 1, err
    assert message in err[0]


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_chump.core import config

    with pytest.raises(SystemExit) as info:
        main(["dispatch", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    flags = ["--repo-root", "--dry-run", "--no-dry-run", "--execute", "--watch", "--no-reflect"]
    flags += [config.flag_name(f) for f in config.declared() if f.metadata["flag"]]
    for flag in flags:
        assert flag in out, flag


def test_console_script_runs_as_a_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_chump.cli",
            "dispatch",
            "--backlog",
            str(SYNTHETIC),
            "--repo-root",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("WOULD DISPATCH:") == 2


def test_dispatch_refuses_to_run_inside_a_dispatched_agent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHUMP_DISPATCH_DEPTH", "1")
    status, _, err = run(
        capsys,
        "dispatch",
        "--no-dry-run",
        "--backlog",
        str(SYNTHETIC),
        "--repo-root",
        str(tmp_path),
        "--pr-provider",
        "instant",
    )
    assert status == 2
    assert err == [
        "chump: error: refusing to dispatch from inside a dispatched agent (CHUMP_DISPATCH_DEPTH=1)"
    ]
    assert not (tmp_path / ".chump").exists()
