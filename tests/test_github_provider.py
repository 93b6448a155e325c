"""The ``github`` provider against a fake ``gh``: state mapping, batching, errors and backoff.

The fake is a Python script that logs its argv and answers like ``gh api graphql`` does,
looking PRs up by the GraphQL variables it was given, so no network is ever touched.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from pytest_chump.config import Settings
from pytest_chump.contracts import PrStatus, Watch
from pytest_chump.errors import ChumpError
from pytest_chump.plugins import collect, get_plugin_manager
from pytest_chump.providers import github_query
from pytest_chump.providers.github import (
    AUTH_MESSAGE,
    RATE_MESSAGE,
    GithubProvider,
    _split_slug,
    split_base_ref,
)

FAKE_GH = """
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "argv.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
with open(os.path.join(here, "scenario.json")) as fh:
    scene = json.load(fh)
time.sleep(scene.get("sleep", 0))
if "exit" in scene:
    sys.stdout.write(scene.get("stdout", ""))
    sys.stderr.write(scene.get("stderr", ""))
    sys.exit(scene["exit"])
rest = sys.argv[3:]
variables = dict(rest[i + 1].split("=", 1) for i in range(0, len(rest), 2))
repository, data = {}, {}
for key, value in variables.items():
    if key[0] == "b" and key[1:].isdigit():
        repository[key] = {"nodes": scene.get("prs", {}).get(value, [])}
    if key[0] == "s" and key[1:].isdigit():
        hits = scene.get("merged", {}).items()
        data[key] = {"nodes": [n for gap, ns in hits if f'"{gap}"' in value for n in ns]}
data["repository"] = repository
print(json.dumps({"data": data}))
"""
TOKEN_SHAPE = re.compile(r"gh[pousr]_[A-Za-z0-9]{8,}|github_pat_|s3cr3t")


class FakeGh:
    """A ``gh`` executable in ``folder`` answering from ``scenario.json`` beside it."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.folder = folder
        self.bin = str(folder / "gh")
        Path(self.bin).write_text(f"#!{sys.executable} -S\n{FAKE_GH}", encoding="utf-8")
        Path(self.bin).chmod(0o755)
        self.answer()

    def answer(self, **scene: object) -> None:
        (self.folder / "scenario.json").write_text(json.dumps(scene), encoding="utf-8")

    def fail(self, code: int, stderr: str = "", stdout: str = "") -> None:
        self.answer(exit=code, stderr=stderr, stdout=stdout)

    def calls(self) -> list[list[str]]:
        log = self.folder / "argv.jsonl"
        text = log.read_text(encoding="utf-8") if log.exists() else ""
        return [json.loads(line) for line in text.splitlines()]


def variables(argv: list[str]) -> dict[str, str]:
    """The ``-f name=value`` pairs of one ``gh api graphql`` argv (all must be ``-f``)."""
    assert argv[:2] == ["api", "graphql"]
    flags, pairs = argv[2::2], argv[3::2]
    assert set(flags) == {"-f"}
    return dict(pair.split("=", 1) for pair in pairs)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gh(tmp_path: Path) -> FakeGh:
    return FakeGh(tmp_path / "fakegh")


@pytest.fixture
def clock() -> Clock:
    return Clock()


def provider(gh: FakeGh, clock: Clock | None = None, **options: Any) -> GithubProvider:
    options.setdefault("repo", "acme/widgets")
    return GithubProvider(gh.folder, gh.bin, "main", clock=clock or Clock(), **options)


def pr(
    number: int, state: str = "OPEN", checks: Iterable[dict[str, Any]] = (), **extra: Any
) -> dict[str, Any]:
    """A PR node as the query's ``chumpPr`` fragment returns it; ``extra`` overrides fields."""
    rollup = {"state": "PENDING", "contexts": {"nodes": list(checks)}}
    node: dict[str, Any] = {
        "number": number,
        "state": state,
        "mergeStateStatus": "CLEAN",
        "headRefName": "x",
    }
    node["commits"] = {"nodes": [{"commit": {"statusCheckRollup": rollup}}]}
    return {**node, **extra}


def run(name: str, conclusion: str | None, status: str = "COMPLETED") -> dict[str, Any]:
    return {"__typename": "CheckRun", "name": name, "status": status, "conclusion": conclusion}


def ctx(name: str, state: str) -> dict[str, Any]:
    return {"__typename": "StatusContext", "context": name, "state": state}


def merged_pr(number: int, head: str, title: str, merged: bool = True) -> dict[str, Any]:
    merged_at = "2026-01-02T03:04:05Z" if merged else None
    return {"number": number, "headRefName": head, "title": title, "mergedAt": merged_at}


# --- registration and configuration --------------------------------------------------------


def test_registered_as_github_with_settings(tmp_path: Path) -> None:
    settings = Settings(repo_root=tmp_path, gh_bin="my-gh", base_ref="up/release", poll_interval=7)
    made = collect(get_plugin_manager(env={}), "pr_providers").factory("github")(settings)
    assert isinstance(made, GithubProvider)
    assert (made.name, made.gh_bin, made.base, made.remote) == ("github", "my-gh", "release", "up")
    assert (made.repo_root, made.poll_interval, made.calls) == (tmp_path, 7, 0)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("origin/main", ("origin", "main")),
        ("main", ("origin", "main")),
        ("upstream/release/1.x", ("upstream", "release/1.x")),
        ("refs/remotes/origin/dev", ("origin", "dev")),
        ("refs/heads/trunk", ("origin", "trunk")),
    ],
)
def test_base_branch_from_base_ref(ref: str, expected: tuple[str, str]) -> None:
    assert split_base_ref(ref) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/widgets.git",
        "https://github.com/acme/widgets",
        "git@github.com:acme/widgets.git",
        "ssh://git@github.com/acme/widgets.git/",
        "https://x-access-token:ghs_abcdefghijklmnopqrstuv@github.com/acme/widgets.git",
        "acme/widgets",
    ],
)
def test_owner_and_name_from_remote_url(url: str) -> None:
    assert _split_slug(url) == ("acme", "widgets")


def test_repository_read_once_from_the_remote(gh: FakeGh, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for argv in (["init", "-q", str(repo)], ["-C", str(repo), "remote", "add", "up", "x"]):
        subprocess.run(["git", *argv], check=True)
    url = "https://x-access-token:ghs_abcdefghijklmnopqrstuv@github.com/acme/widgets.git"
    subprocess.run(["git", "-C", str(repo), "remote", "set-url", "up", url], check=True)
    made = GithubProvider(repo, gh.bin, "main", remote="up", clock=Clock())
    made.poll([Watch("chump/a", "G-1")])
    assert made.repository() == ("acme", "widgets")
    sent = variables(gh.calls()[0])
    assert (sent["owner"], sent["repo"], sent["base"]) == ("acme", "widgets", "main")
    with pytest.raises(ChumpError, match="no git remote 'origin'") as err:
        GithubProvider(repo, gh.bin, clock=Clock()).poll([Watch("chump/a", "G-1")])
    assert "\n" not in str(err.value)
    subprocess.run(["git", "-C", str(repo), "remote", "set-url", "up", str(tmp_path)], check=True)
    with pytest.raises(ChumpError, match="remote 'up' is not a GitHub URL"):
        GithubProvider(repo, gh.bin, remote="up", clock=Clock()).poll([Watch("chump/a", "G-1")])
    assert len(gh.calls()) == 1


# --- state mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contexts", "expected"),
    [
        ([], ("pending", ())),
        ([run("unit", "SUCCESS"), ctx("ci/lint", "SUCCESS")], ("passing", ())),
        ([run("unit", "SUCCESS"), run("docs", None, "IN_PROGRESS")], ("pending", ())),
        ([run("unit", None, "QUEUED")], ("pending", ())),
        ([ctx("ci/lint", "PENDING")], ("pending", ())),
        ([ctx("ci/lint", "EXPECTED")], ("pending", ())),
        ([run("unit", "FAILURE")], ("failing", ("unit",))),
        ([run("unit", "TIMED_OUT")], ("failing", ("unit",))),
        ([run("unit", "ACTION_REQUIRED")], ("failing", ("unit",))),
        ([run("unit", "STARTUP_FAILURE")], ("failing", ("unit",))),
        ([ctx("ci/lint", "ERROR")], ("failing", ("ci/lint",))),
        ([ctx("ci/lint", "FAILURE")], ("failing", ("ci/lint",))),
        ([run("a", "CANCELLED"), run("b", "SKIPPED"), run("c", "NEUTRAL")], ("passing", ())),
        ([run("a", "CANCELLED"), run("b", "SUCCESS"), run("c", None)], ("pending", ())),
        (
            [run("zeta", "FAILURE"), ctx("alpha", "ERROR"), run("b", None), run("c", "SKIPPED")],
            ("failing", ("alpha", "zeta")),
        ),
    ],
)
def test_check_state(contexts: list[dict[str, Any]], expected: tuple[str, tuple[str, ...]]) -> None:
    assert github_query.check_state(contexts) == expected


def test_every_state_in_one_call(gh: FakeGh) -> None:
    gh.answer(
        prs={
            "chump/merged": [pr(1, "MERGED")],
            "chump/closed": [pr(2, "CLOSED")],
            "chump/pending": [pr(3, checks=[run("unit", None, "IN_PROGRESS")])],
            "chump/passing": [pr(4, checks=[run("unit", "SUCCESS"), ctx("lint", "SUCCESS")])],
            "chump/failing": [pr(5, checks=[run("unit", "TIMED_OUT"), ctx("lint", "ERROR")])],
            "chump/raced-open": [pr(6, mergeStateStatus="DIRTY")],
            "chump/raced-won": [pr(7, "MERGED")],
            "chump/nochecks": [pr(8, commits={"nodes": [{"commit": {"statusCheckRollup": None}}]})],
        },
        merged={
            "G-7": [merged_pr(90, "chump/other", "G-7: same gap")],
            "G-8": [merged_pr(91, "chump/other2", "fix G-8")],
            "G-9": [merged_pr(7, "chump/raced-won", "G-9 done")],
        },
    )
    branches = ["merged", "closed", "pending", "passing", "failing", "none", "raced", "raced-open"]
    gaps = ["G-1", "G-2", "G-3", "G-4", "G-5", "G-6", "G-7", "G-8"]
    watches = [Watch(f"chump/{b}", gap) for b, gap in zip(branches, gaps, strict=True)]
    watches += [Watch("chump/raced-won", "G-9"), Watch("chump/nochecks", "G-10")]
    made = provider(gh)
    assert made.poll(watches) == {
        "chump/merged": PrStatus(1, "MERGED", "CLEAN"),
        "chump/closed": PrStatus(2, "CLOSED", "CLEAN", detail="pull request #2 closed unmerged"),
        "chump/pending": PrStatus(3, "OPEN", "CLEAN"),
        "chump/passing": PrStatus(4, "OPEN", "CLEAN", "passing"),
        "chump/failing": PrStatus(5, "OPEN", "CLEAN", "failing", ("lint", "unit")),
        "chump/raced": PrStatus(None, "OPEN", superseded_by=90),
        "chump/raced-open": PrStatus(6, "OPEN", "DIRTY", superseded_by=91),
        "chump/raced-won": PrStatus(7, "MERGED", "CLEAN"),
        "chump/nochecks": PrStatus(8, "OPEN", "CLEAN"),
    }
    assert made.calls == 1
    assert len(gh.calls()) == 1


def test_race_needs_a_merged_sibling_naming_the_gap() -> None:
    watch = Watch("chump/mine", "G-1")
    nodes = [
        merged_pr(10, "chump/mine", "G-1 my own earlier PR"),
        merged_pr(11, "chump/other", "G-10 is another gap"),
        merged_pr(12, "chump/other", "G-1 not merged", merged=False),
        {"number": 13},  # an issue hit of the search: no PR fields
    ]
    assert github_query.parse({"repository": {}, "s0": {"nodes": nodes}}, [watch]) == {}
    nodes.append(merged_pr(14, "chump/sib", "chore(g-1): lower case id"))
    found = github_query.parse({"repository": {}, "s0": {"nodes": nodes}}, [watch])
    assert found == {"chump/mine": PrStatus(None, "OPEN", superseded_by=14)}


# --- batching and variables ----------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 8, 64])
def test_one_gh_call_per_poll(gh: FakeGh, count: int) -> None:
    watches = [Watch(f"chump/gap-{i}", f"G-{i}") for i in range(count)]
    gh.answer(prs={f"chump/gap-{i}": [pr(100 + i)] for i in range(count)})
    made = provider(gh)
    for poll in (1, 2):
        result = made.poll(watches)
        assert made.calls == poll
        assert len(gh.calls()) == poll
    assert {b: s.number for b, s in result.items()} == {
        w.branch: 100 + i for i, w in enumerate(watches)
    }
    sent = variables(gh.calls()[-1])
    assert [sent[f"b{i}"] for i in range(count)] == [w.branch for w in watches]
    assert sent[f"s{count - 1}"].endswith(f'in:title "G-{count - 1}"')


def test_no_watches_no_call(gh: FakeGh) -> None:
    made = provider(gh)
    assert made.poll([]) == {}
    assert made.calls == 0


def test_branch_names_travel_as_variables(gh: FakeGh) -> None:
    evil = ['chump/a"){x:viewer{login}}#', "@/etc/passwd", "chump/{b0}", "123"]
    gh.answer(prs={name: [pr(50 + i)] for i, name in enumerate(evil)})
    result = provider(gh).poll([Watch(name, f"G-{i}") for i, name in enumerate(evil)])
    assert {name: status.number for name, status in result.items()} == {
        name: 50 + i for i, name in enumerate(evil)
    }
    sent = variables(gh.calls()[0])
    for i, name in enumerate(evil):
        assert sent[f"b{i}"] == name
        assert name not in sent["query"]
    assert "viewer" not in sent["query"]


# --- errors and backoff --------------------------------------------------------------------

ERRORS = [
    (1, "HTTP 401: Bad credentials (https://api.github.com/graphql)\n", "", AUTH_MESSAGE),
    (4, "To get started with GitHub CLI, please run:  gh auth login\n", "", AUTH_MESSAGE),
    (1, "gh: API rate limit exceeded for user ID 42. (HTTP 403)\n", "", RATE_MESSAGE),
    (1, "HTTP 429: Too Many Requests\n", "", RATE_MESSAGE),
    (
        1,
        "gh: API limit reached\n",
        json.dumps({"errors": [{"type": "RATE_LIMITED", "message": "API limit reached"}]}),
        RATE_MESSAGE,
    ),
    (
        1,
        "gh: Could not resolve to a Repository with the name 'acme/widgets'.\n",
        json.dumps(
            {
                "data": {"repository": None},
                "errors": [
                    {"type": "NOT_FOUND", "message": "Could not resolve to a Repository"},
                    {"message": "second"},
                ],
            }
        ),
        "GitHub answered with an error: Could not resolve to a Repository (+1 more)",
    ),
    (
        0,
        "",
        json.dumps({"data": None, "errors": [{"message": "Field 'x' doesn't exist"}]}),
        "GitHub answered with an error: Field 'x' doesn't exist",
    ),
    (0, "", "<html>\n<h1>Unicorn!</h1>", "answer is not JSON: '<html>"),
    (0, "", '["not", "an", "object"]', "answer is not JSON"),
    (0, "", '{"data": null}', "answer has no data"),
    (2, "warming up\nsomething broke\n", "", "exit status 2: something broke"),
    (
        1,
        "send failed\nAuthorization: bearer ghp_abcdefghijklmnopqrstuvwxyz0123 s3cr3tvalue\n",
        "",
        "exit status 1: Authorization:",
    ),
]


@pytest.mark.parametrize(("code", "stderr", "stdout", "expected"), ERRORS)
def test_errors_are_one_clean_line(
    gh: FakeGh, monkeypatch: pytest.MonkeyPatch, code: int, stderr: str, stdout: str, expected: str
) -> None:
    monkeypatch.setenv("GH_TOKEN", "s3cr3tvalue")
    gh.fail(code, stderr, stdout)
    with pytest.raises(ChumpError) as err:
        provider(gh).poll([Watch("chump/a", "G-1")])
    message = str(err.value)
    assert expected in message
    assert "\n" not in message
    assert not TOKEN_SHAPE.search(message), message


def test_gh_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    made = GithubProvider(tmp_path, repo="acme/widgets", clock=Clock())
    with pytest.raises(ChumpError) as err:
        made.poll([Watch("chump/a", "G-1")])
    assert str(err.value) == "gh: command not found (install the GitHub CLI or set gh_bin)"


def test_timeout(gh: FakeGh) -> None:
    gh.answer(sleep=5)
    with pytest.raises(ChumpError) as err:
        provider(gh, timeout=0.5).poll([Watch("chump/a", "G-1")])
    assert str(err.value) == "gh api graphql: no answer within 0.5s"


def test_backoff_doubles_and_resets(gh: FakeGh, clock: Clock) -> None:
    made, watches = provider(gh, clock, poll_interval=30), [Watch("chump/a", "G-1")]
    gh.fail(1, "HTTP 429: Too Many Requests\n")
    for wait, calls in [(0, 1), (59, 1), (1, 2), (119, 2), (1, 3)]:
        clock.now += wait
        with pytest.raises(ChumpError, match="rate limit"):
            made.poll(watches)
        assert made.calls == calls
    gh.answer()
    clock.now += 240
    assert made.poll(watches) == {}
    assert made.calls == 4
    gh.fail(1, "HTTP 429: Too Many Requests\n")
    for wait, calls in [(0, 5), (59, 5), (1, 6)]:
        clock.now += wait
        with pytest.raises(ChumpError):
            made.poll(watches)
        assert made.calls == calls


def test_backoff_is_capped_at_ten_minutes(gh: FakeGh, clock: Clock) -> None:
    made, watches = provider(gh, clock, poll_interval=500), [Watch("chump/a", "G-1")]
    gh.fail(1, "boom\n")
    for wait, calls in [(0, 1), (599, 1), (1, 2), (600, 3)]:
        clock.now += wait
        with pytest.raises(ChumpError, match="exit status 1: boom"):
            made.poll(watches)
        assert made.calls == calls
