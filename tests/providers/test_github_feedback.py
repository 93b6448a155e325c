"""What a failed pull request tells the next attempt, through a fake ``gh`` answering with
the real JSON shapes of ``gh run list --json``, ``gh run view --log-failed``,
``gh pr view --json reviews`` and the REST review-comments endpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_chump.core.protocols import PrStatus, Watch
from pytest_chump.loop.decide import FINISH, WAIT, Observation, decide
from pytest_chump.providers.github import GithubProvider
from tests.providers.test_github_provider import FakeGh, pr, run

FAKE = """\
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "argv.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
scene = json.load(open(os.path.join(here, "scenario.json")))
for prefix, (code, out) in scene.items():
    if " ".join(sys.argv[1:]).startswith(prefix):
        sys.stdout.write(out)
        sys.exit(code)
sys.exit(1)
"""
LOG = "".join(f"test\tRun pytest\t2026-11-28T10:00:{n:02d}Z line {n}\n" for n in range(100))
REVIEWS = {
    "reviews": [
        {"author": {"login": "ana"}, "body": "Looks fine", "state": "APPROVED"},
        {
            "author": {"login": "bo"},
            "body": "Please handle the\nempty case.",
            "state": "CHANGES_REQUESTED",
        },
    ]
}
COMMENTS = [
    {"path": "src/calc.py", "line": 12, "body": "This divides by zero.", "user": {"login": "bo"}},
    {
        "path": "README.md",
        "line": None,
        "original_line": 3,
        "body": "typo",
        "user": {"login": "ana"},
    },
]


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    folder = tmp_path / "gh"
    folder.mkdir()
    (folder / "gh").write_text(f"#!{sys.executable} -S\n{FAKE}")
    (folder / "gh").chmod(0o755)
    return folder


def scene(folder: Path, **answers: tuple[int, Any]) -> None:
    table = {
        k.replace("_", " "): (c, o if isinstance(o, str) else json.dumps(o))
        for k, (c, o) in answers.items()
    }
    (folder / "scenario.json").write_text(json.dumps(table))


def provider(folder: Path) -> GithubProvider:
    return GithubProvider(folder, str(folder / "gh"), "main", repo="acme/widgets")


def test_failed_runs_and_review_comments_go_back_to_the_agent(fake: Path) -> None:
    runs = [
        {"databaseId": 7, "conclusion": "success", "name": "lint", "workflowName": "Lint"},
        {"databaseId": 9, "conclusion": "failure", "name": "test", "workflowName": "CI"},
    ]
    scene(
        fake,
        run_list=(0, runs),
        run_view_9=(0, LOG),
        pr_view_5=(0, REVIEWS),
        api_repos=(0, COMMENTS),
    )
    status = PrStatus(5, "OPEN", checks="failing", failing_checks=("test",))
    text = provider(fake).feedback("chump/calc-1", status)
    assert "The end of the failed run CI (#9):" in text
    assert "line 99" in text
    assert "line 39" not in text  # the last 60 lines only
    assert "- review by bo: Please handle the empty case." in text
    assert "Looks fine" not in text
    assert "- src/calc.py:12 (bo): This divides by zero." in text
    assert "- README.md:3 (ana): typo" in text
    calls = [json.loads(line) for line in (fake / "argv.jsonl").read_text().splitlines()]
    listed = next(c for c in calls if c[:2] == ["run", "list"])
    assert listed[:6] == ["run", "list", "--repo", "acme/widgets", "--branch", "chump/calc-1"]
    assert text.index("Review comments:") < text.index("The end of the failed run")  # kept first


def test_what_gh_cannot_answer_is_left_out(fake: Path) -> None:
    scene(fake, run_list=(0, "not json"), pr_view_5=(4, ""), api_repos=(0, {"message": "x"}))
    status = PrStatus(5, "OPEN", checks="failing", failing_checks=("test",))
    assert provider(fake).feedback("chump/calc-1", status) == ""


def test_a_review_requesting_changes_is_read_from_the_poll(tmp_path: Path) -> None:
    gh = FakeGh(tmp_path / "poll")

    def review(oid: str) -> dict[str, object]:
        return {"state": "CHANGES_REQUESTED", "commit": {"oid": oid}}

    provider = GithubProvider(gh.folder, gh.bin, "main", repo="acme/widgets")
    for head, reviewed, expected in (("c2", "c2", "changes-requested"), ("c3", "c2", "")):
        node = pr(5, "OPEN", [run("test", "SUCCESS")], headRefOid=head)
        node["latestReviews"] = {"nodes": [review(reviewed)]}
        gh.answer(prs={"chump/a": [node]})
        found = provider.poll([Watch("chump/a", "A-1")])
        assert found["chump/a"].review == expected  # a request on an older head is stale


@pytest.mark.parametrize(("exit_code", "action"), [(None, WAIT), (0, FINISH)])
def test_requested_changes_end_the_attempt_once_the_agent_finished(
    exit_code: int | None, action: str
) -> None:
    status = PrStatus(5, "OPEN", checks="passing", review="changes-requested")
    decision = decide(Observation(elapsed=10, soft_deadline=100, exit_code=exit_code, pr=status))
    assert decision.action == action
    if action == FINISH:
        assert decision.outcome is not None
        assert (decision.outcome.name, decision.outcome.cause) == ("ci_failed", "changes-requested")
