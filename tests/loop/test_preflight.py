"""Preflight: before the first agent starts, the PR provider proves it can work and every
spawner finds its binary; a failure is one line naming the problem and the fix, exit 2, and
nothing is started. The GitHub CLI's answers are the real ones, recorded in fixtures/."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from pytest_chump.state.store import Store
from tests.chumpproc import ChumpProcess
from tests.gitrepos import (
    git,
    repo,  # noqa: F401  (fixture)
)

FIXTURES = Path(__file__).parents[2] / "fixtures"
EXECUTE = ("dispatch", "--no-dry-run", "--watch")
FAKE_GH = """\
#!{python}
import sys
if sys.argv[1:3] == ["auth", "status"]:
    sys.stderr.write(open({fixture!r}, encoding="utf-8").read())
    sys.exit(1)
sys.exit(99)  # preflight must stop before anything else is asked
"""


def _refused(repo: Path, *flags: str) -> str:
    chump = ChumpProcess(repo, *EXECUTE, *flags)
    assert chump.finish() == 2, chump.text
    assert "Traceback" not in chump.text
    assert "DISPATCHED" not in chump.text
    with Store.for_repo(repo) as store:
        assert store.dispatches() == []  # nothing started
    assert not (repo / ".chump/worktrees").exists() or not any(
        (repo / ".chump/worktrees").iterdir()
    )
    return chump.lines[-1]


def test_an_unreachable_origin_is_one_line_before_anything_starts(repo: Path) -> None:
    git(repo, "remote", "set-url", "origin", str(repo.parent / "gone.git"))
    line = _refused(repo)
    assert line.startswith("chump: error: git provider: cannot reach origin: '")
    assert "does not appear to be a git repository" in line
    assert line.endswith("(check the network and `git remote -v`)")


def test_a_base_branch_missing_on_origin_is_named(repo: Path) -> None:
    git(repo, "update-ref", "refs/remotes/origin/trunk", "HEAD")  # known here, gone there
    line = _refused(repo, "--base-ref", "origin/trunk")
    assert (
        line == "chump: error: git provider: origin has no branch 'trunk'; push it or set base_ref"
    )


def _github(repo: Path, gh: str) -> None:
    text = (repo / "pyproject.toml").read_text()
    text = text.replace('pr_provider = "git"', f'pr_provider = "github"\ngh_bin = "{gh}"')
    (repo / "pyproject.toml").write_text(text)


def test_gh_not_logged_in_is_one_line_with_the_fix(repo: Path, tmp_path: Path) -> None:
    gh = tmp_path / "gh"
    fixture = FIXTURES / "gh/auth-status-not-logged-in.stderr.txt"
    gh.write_text(FAKE_GH.format(python=sys.executable, fixture=str(fixture)))
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    _github(repo, str(gh))
    git(repo, "remote", "set-url", "origin", "https://github.com/acme/widgets.git")
    line = _refused(repo)
    assert (
        line
        == "chump: error: gh: not logged in to GitHub or credentials rejected (run `gh auth login`)"
    )


def test_a_missing_gh_is_named(repo: Path) -> None:
    _github(repo, "/nonexistent/gh")
    git(repo, "remote", "set-url", "origin", "git@github.com:acme/widgets.git")
    assert _refused(repo) == (
        "chump: error: /nonexistent/gh: command not found (install the GitHub CLI or set gh_bin)"
    )


def test_an_origin_that_is_not_on_github_is_named(repo: Path) -> None:
    _github(repo, "gh")
    line = _refused(repo)
    assert line == (
        "chump: error: github provider: remote 'origin' is not a GitHub URL: point it at GitHub, "
        'or use pr_provider = "git"'
    )


@pytest.mark.parametrize("spawner", ["claude", "codex"])
def test_a_spawner_without_its_binary_is_named(repo: Path, spawner: str) -> None:
    text = (repo / "pyproject.toml").read_text()
    text = text.replace('spawner = "script"', f'spawner = "{spawner}"')
    text += f'\n[tool.chump.spawners.{spawner}]\nbinary = "/nonexistent/{spawner}"\n'
    (repo / "pyproject.toml").write_text(text)
    line = _refused(repo)
    table = f"[tool.chump.spawners.{spawner}]"
    assert line.startswith(f"chump: error: /nonexistent/{spawner}: command not found; set {table}")


def test_an_arm_no_open_gap_can_use_needs_no_binary(repo: Path) -> None:
    """A routing rule for gaps this backlog does not have must not block the run."""
    text = (repo / "pyproject.toml").read_text()
    rule = '{ match = { prefix = ["NOPE-"] }, arms = [{ spawner = "codex" }] }'
    text = text.replace(
        "[tool.chump.spawners.script]",
        f'[tool.chump.routing]\nrules = [{rule}]\ndefault = [{{ spawner = "script" }}]\n\n'
        "[tool.chump.spawners.script]",
    )
    text += '\n[tool.chump.spawners.codex]\nbinary = "/nonexistent/codex"\n'
    (repo / "pyproject.toml").write_text(text)
    (repo / "docs/gaps.yaml").write_text("gaps:\n  - {id: OK-1, priority: P1, effort: s}\n")
    chump = ChumpProcess(repo, *EXECUTE)
    assert chump.finish() == 0, chump.text
    assert "OUTCOME: OK-1 shipped" in chump.text
