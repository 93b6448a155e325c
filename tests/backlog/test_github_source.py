"""The ``github`` backlog source against a fake ``gh`` that answers with the real JSON shape
of ``gh issue list --json`` (and fails the way gh does without a login)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pytest_chump.backlog.github import dependencies, gap_of
from pytest_chump.cli import main
from pytest_chump.core.errors import BacklogError, UsageError
from pytest_chump.loop.app import App

FAKE_GH = """\
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "argv.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
scene = json.load(open(os.path.join(here, "scene.json")))
sys.stdout.write(scene.get("stdout", ""))
sys.stderr.write(scene.get("stderr", ""))
sys.exit(scene.get("code", 0))
"""


def label(name: str) -> dict[str, str]:
    return {"id": f"LA_{name}", "name": name, "description": "", "color": "ededed"}


ISSUES = [
    {
        "number": 12,
        "title": "Add a calculator",
        "body": "Make it add.\n\nDepends on #11",
        "labels": [label("chump"), label("P1"), label("effort:s")],
        "state": "OPEN",
        "closedAt": None,
    },
    {
        "number": 11,
        "title": "Set up the project",
        "body": "",
        "labels": [label("chump"), label("priority:p0")],
        "state": "CLOSED",
        "closedAt": "2026-11-20T10:11:12Z",
    },
    {
        "number": 13,
        "title": "Two priorities",
        "body": "Blocked by #12, #99",
        "labels": [label("chump"), label("P1"), label("P2"), label("kind:system")],
        "state": "OPEN",
        "closedAt": None,
    },
]


@pytest.fixture
def gh(tmp_path: Path) -> Path:
    (tmp_path / "gh.py").write_text(FAKE_GH)
    wrapper = tmp_path / "gh"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {tmp_path / "gh.py"} "$@"\n')
    wrapper.chmod(0o755)
    return tmp_path


def scene(gh: Path, **answer: object) -> None:
    (gh / "scene.json").write_text(json.dumps(answer))


def app_for(gh: Path, root: Path, **options: object) -> App:
    table = "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())
    (root / "pyproject.toml").write_text(
        f"[tool.chump]\nbacklog_source = 'github'\ngh_bin = '{gh / 'gh'}'\n"
        f"[tool.chump.backlog_sources.github]\n{table}"
    )
    return App.create({"repo_root": str(root)})


def test_one_gh_call_gives_every_gap(gh: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    scene(gh, stdout=json.dumps(ISSUES))
    backlog = app_for(gh, repo, label="agents", repo="acme/app").load_backlog()
    calls = [json.loads(line) for line in (gh / "argv.jsonl").read_text().splitlines()]
    assert calls == [
        [
            "issue",
            "list",
            "--label",
            "agents",
            "--state",
            "all",
            "--json",
            "number,title,body,labels,state,closedAt",
            "--limit",
            "1000",
            "--repo",
            "acme/app",
        ]
    ]
    gaps = backlog.by_id()
    assert (gaps["GH-12"].priority, gaps["GH-12"].effort, gaps["GH-12"].depends_on) == (
        "P1",
        "s",
        ("GH-11",),
    )
    assert (gaps["GH-11"].status, gaps["GH-11"].closed_date, gaps["GH-11"].priority) == (
        "done",
        "2026-11-20",
        "P0",
    )
    assert sorted(str(p) for p in backlog.problems) == [
        "github:acme/app: #13.depends_on[1]: unknown id 'GH-99'",
        "github:acme/app: #13.priority: must be a string, got a list",
    ]
    assert [g.id for g in backlog.dispatchable()] == ["GH-12", "GH-11"]


def test_the_dry_run_picks_from_issues(
    gh: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    app_for(gh, repo)
    scene(gh, stdout=json.dumps(ISSUES))
    assert main(["dispatch", "--repo-root", str(repo)]) == 0
    out, err = capsys.readouterr()
    assert "WOULD DISPATCH: GH-12 (prio=P1 effort=s)" in out
    assert "1 gaps with problems are quarantined" in err


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            {"code": 4, "stderr": "To get started with GitHub CLI, please run:  gh auth login\n"},
            "github:issues: gh: gh: not logged in to GitHub or credentials rejected",
        ),
        (
            {"code": 1, "stderr": "HTTP 401: Bad credentials (https://api.github.com/graphql)\n"},
            "github:issues: gh: gh: not logged in to GitHub or credentials rejected",
        ),
        (
            {"code": 1, "stderr": "GraphQL: Could not resolve to a Repository\n"},
            "github:issues: gh: gh issue list: exit status 1: GraphQL: Could not resolve",
        ),
        ({"stdout": '{"message": "nope"}'}, "github:issues: gh: gh issue list: unexpected answer"),
    ],
)
def test_gh_failures_refuse_the_backlog_in_one_line(
    gh: Path, tmp_path: Path, answer: dict[str, object], message: str
) -> None:
    scene(gh, **answer)
    with pytest.raises(BacklogError) as caught:
        app_for(gh, tmp_path).load_backlog()
    (line,) = caught.value.lines()
    assert line.startswith(message)


def test_missing_gh_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.chump]\nbacklog_source = 'github'\ngh_bin = '/nonexistent/gh'\n"
    )
    with pytest.raises(Exception, match="command not found"):
        App.create({"repo_root": str(tmp_path)}).load_backlog()


def test_bad_options_are_usage_errors(gh: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"backlog_sources.github\] limit: expected a positive"):
        app_for(gh, tmp_path, limit=0).load_backlog()
    with pytest.raises(UsageError, match="unknown option"):
        app_for(gh, tmp_path, labels="x").load_backlog()


def test_a_full_page_says_the_list_may_be_cut(gh: Path, tmp_path: Path) -> None:
    scene(gh, stdout=json.dumps(ISSUES[:2]))
    backlog = app_for(gh, tmp_path, limit=2).load_backlog()
    assert str(backlog.problems[-1]) == "github:issues: limit: only the first 2 issues were read"


def test_dependency_lines_and_labels() -> None:
    assert dependencies("Depends on #3 and #4\nnot #5\n- blocked by: #6") == [
        "GH-3",
        "GH-4",
        "GH-6",
    ]
    gap = gap_of(
        {"number": 1, "title": "t", "labels": [label("status:in_progress")], "state": "OPEN"}
    )
    assert gap["status"] == "in_progress"


def test_label_spellings_conflicts_and_other_repositories() -> None:
    issue = {
        "number": 5,
        "title": "t",
        "body": "Depends on #3 and acme/other#4",
        "labels": [label("priority: P1"), label("effort:S"), "kind:system"],
        "state": "OPEN",
    }
    gap = gap_of(issue)
    assert (gap["priority"], gap["effort"], gap["kind"]) == ("P1", "s", "system")
    assert gap["depends_on"] == ["GH-3"]  # #4 is in another repository
    two = gap_of({**issue, "labels": [label("effort:xl"), label("effort:s")]})
    assert two["effort"] == ["s", "xl"]  # a problem for the checks, never a silent pick
