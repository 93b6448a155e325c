"""The prompt fits the repository: its rules file, the gap's scope, the provider, the backlog
the gap lives in; or the repository's own template, checked before anything is dispatched."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_chump.cli import main
from pytest_chump.core.config_sources import resolve
from pytest_chump.core.errors import UsageError
from pytest_chump.core.model import Gap
from pytest_chump.core.protocols import Dispatch
from pytest_chump.dispatch.plugin import chump_build_prompt
from pytest_chump.dispatch.prompt import load_template

GAP = Gap(
    "CALC-2",
    title="subtract",
    priority="P1",
    effort="s",
    depends_on=("CALC-1",),
    paths=("src/calc/", "tests/test_calc.py"),
    scope="only the subtraction",
)


def prompt(root: Path, gap: Gap = GAP, **flags: object) -> str:
    settings = resolve(root, {"lessons": False, **flags}, env={})
    dispatch = Dispatch(gap, "chump/calc-2", root / "wt", "claude", 0.0)
    return chump_build_prompt(gap, dispatch, settings)


def test_rules_file_scope_and_github_shipping(tmp_path: Path) -> None:
    rules = tmp_path / "docs/process/CHUMP_DISPATCH_RULES.md"
    rules.parent.mkdir(parents=True)
    rules.write_text("# Rules\nNever touch vendor/.\n")
    text = prompt(tmp_path)
    assert "The repository's rules for agents:\n# Rules\nNever touch vendor/." in text
    assert "Scope of this gap: keep your changes to\n- src/calc/\n- tests/test_calc.py\n" in text
    assert "only the subtraction" in text
    assert "open a pull request for CALC-2" in text
    assert "reply with its number only" in text
    assert "on gap CALC-2 set `status: done`, `closed_date: " in text
    assert "`closed_pr:` the pull request's number" in text
    assert "backlog (docs/gaps.yaml)" in text
    rules.write_text("Rule two.\n")  # read at every dispatch: an edit applies at once
    assert "Rule two." in prompt(tmp_path)
    assert "rules for agents" not in prompt(tmp_path, rules_file="")


def test_the_offline_git_provider_is_not_asked_for_a_pull_request(tmp_path: Path) -> None:
    text = prompt(tmp_path, pr_provider="git")
    assert "pull request" not in text
    assert "land it on origin/main" in text
    assert "closed_pr" not in text
    gated = prompt(tmp_path, pr_provider="git")
    assert "merge gate" not in gated  # the gate is a table setting: see the next test


def test_with_a_merge_gate_the_agent_only_commits(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.chump]\npr_provider = 'git'\nlessons = false\n"
        "[tool.chump.merge_gate]\ncommand = ['true']\n"
    )
    settings = resolve(tmp_path, {}, env={})
    text = chump_build_prompt(GAP, Dispatch(GAP, "chump/calc-2", tmp_path, "x", 0.0), settings)
    assert "do not push it: when you exit, chump runs the checks" in text


def test_a_gap_in_a_backlog_directory_is_marked_done_in_its_own_file(tmp_path: Path) -> None:
    gap = Gap("CALC-2", source=str(tmp_path / "docs/gaps/CALC-2.yaml"))
    text = prompt(tmp_path, gap, backlog="docs/gaps")
    assert "backlog (docs/gaps/CALC-2.yaml)" in text


def test_github_issues_are_closed_by_the_pull_request(tmp_path: Path) -> None:
    text = prompt(tmp_path, Gap("GH-12", title="x"), backlog_source="github")
    assert "`Closes #12`" in text
    assert "status: done" not in text


def test_a_repository_owned_template(tmp_path: Path) -> None:
    (tmp_path / "prompt.md").write_text(
        "Gap {gap_id} ({priority}/{effort}) on {branch}: {title}\n{{literal}}\n{ship}\n"
    )
    text = prompt(tmp_path, prompt_template="prompt.md")
    assert text.startswith("Gap CALC-2 (P1/s) on chump/calc-2: subtract\n{literal}\nCommit on")


def test_an_unknown_placeholder_stops_dispatch_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "prompt.md").write_text("Gap {gap_id}\nfor {owner.secret}\n")
    settings = resolve(tmp_path, {"prompt_template": "prompt.md"}, env={})
    expected = r"prompt\.md:2: unsupported placeholder \{owner\.secret\}"
    with pytest.raises(UsageError, match=expected):
        load_template(settings)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/gaps.yaml").write_text("gaps:\n  - {id: A-1, priority: P1}\n")
    status = main(["dispatch", "--repo-root", str(tmp_path), "--prompt-template", "prompt.md"])
    _, err = capsys.readouterr()
    assert status == 2
    assert "unsupported placeholder {owner.secret} (valid: {gap_id}, {title}" in err
    assert not (tmp_path / ".chump").exists()
