"""The ``github`` provider against a fake ``gh``: state mapping, batching, errors and backoff.

The fake is a Python script that logs its argv and answers like ``gh api graphql`` does,
looking PRs up by the GraphQL variables it was given, so no network is ever touched. Like
GitHub, it answers ``isRequired`` on checks only for branches whose ``nN`` variable was sent.
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

from pytest_chump.core.config import Settings
from pytest_chump.core.errors import ChumpError
from pytest_chump.core.plugins import collect, get_plugin_manager
from pytest_chump.core.protocols import PrStatus, Watch
from pytest_chump.providers import github_parse
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
def shape(node, asked):
    if isinstance(node, list):
        return [shape(item, asked) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: shape(v, asked) for k, v in node.items() if asked or k != "isRequired"}
    if asked and node.get("__typename") in ("CheckRun", "StatusContext"):
        out.setdefault("isRequired", False)
    return out
repository, data = {}, {}
for key, value in variables.items():
    if key[0] == "b" and key[1:].isdigit():
        asked = "n" + key[1:] in variables
        repository[key] = {"nodes": shape(scene.get("prs", {}).get(value, []), asked)}
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
    """The ``name=value`` pairs of one ``gh api graphql`` argv.

    Every value must be a raw ``-f`` string, except the PR numbers ``nN``: ``-F`` integers.
    """
    assert argv[:2] == ["api", "graphql"]
    found = {}
    for flag, pair in zip(argv[2::2], argv[3::2], strict=True):
        key, value = pair.split("=", 1)
        if re.fullmatch(r"n\d+", key):
            assert (flag, value) == ("-F", str(int(value))), (flag, pair)
        else:
            assert flag == "-f", (flag, pair)
        found[key] = value
    return found


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
    number: object, state: object = "OPEN", checks: Iterable[object] = (), **extra: Any
) -> dict[str, Any]:
    """A PR node as the query's ``chumpPr`` fragment returns it; ``extra`` overrides fields.

    Any value is accepted, so that answers of the wrong shape can be built too.
    """
    rollup = {"state": "PENDING", "contexts": {"nodes": list(checks)}}
    node: dict[str, Any] = {
        "number": number,
        "state": state,
        "mergeStateStatus": "CLEAN",
        "headRefName": "x",
    }
    node["commits"] = {"nodes": [{"commit": {"statusCheckRollup": rollup}}]}
    return {**node, **extra}


def run(
    name: str, conclusion: str | None, status: str = "COMPLETED", required: bool = False
) -> dict[str, Any]:
    """A CheckRun node; the fake drops ``isRequired`` unless the query asked for it."""
    node = {"__typename": "CheckRun", "name": name, "status": status, "conclusion": conclusion}
    return {**node, "isRequired": required}


def ctx(name: str, state: str | None, required: bool = False) -> dict[str, Any]:
    """A StatusContext node; the fake drops ``isRequired`` unless the query asked for it."""
    return {"__typename": "StatusContext", "context": name, "state": state, "isRequired": required}


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
        ([run("unit", "STARTUP_FAILURE")], ("pending", ())),
        ([run("unit", "STALE")], ("pending", ())),
        ([run("unit", "SUCCESS"), run("boot", "STARTUP_FAILURE")], ("pending", ())),
        ([run("unit", "SUCCESS"), run("lint", "whatever-new")], ("pending", ())),
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
    assert github_parse.check_state(contexts) == expected


@pytest.mark.parametrize(
    ("contexts", "known", "expected"),
    [
        ([run("unit", "FAILURE", required=True), run("docs", "FAILURE")], True, "failing unit"),
        ([run("unit", "SUCCESS", required=True), ctx("lint", "FAILURE")], True, "passing"),
        ([run("unit", None, "QUEUED", required=True), ctx("lint", "ERROR")], True, "pending"),
        ([run("unit", "SUCCESS", required=True), run("docs", None, "QUEUED")], True, "passing"),
        ([run("a", "SKIPPED", required=True), run("b", "SUCCESS", required=True)], True, "passing"),
        # no required check (no branch protection): every check counts
        ([run("unit", "SUCCESS"), ctx("lint", "FAILURE")], True, "failing lint"),
        # required-ness unknown (not asked, or not answered by every check): every check counts
        ([run("unit", "SUCCESS", required=True), ctx("lint", "FAILURE")], False, "failing lint"),
        (
            [run("unit", "SUCCESS", required=True), {**ctx("lint", "FAILURE"), "isRequired": None}],
            True,
            "failing lint",
        ),
    ],
)
def test_only_required_checks_decide_when_known(
    contexts: list[dict[str, Any]], known: bool, expected: str
) -> None:
    checks, *names = expected.split()
    assert github_parse.check_state(contexts, required_known=known) == (checks, tuple(names))


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
        # first sight: which checks are required is only asked on the next poll
        "chump/failing": PrStatus(5, "OPEN", "CLEAN"),
        "chump/raced": PrStatus(None, "OPEN", superseded_by=90),
        "chump/raced-open": PrStatus(6, "OPEN", "DIRTY", superseded_by=91),
        "chump/raced-won": PrStatus(7, "MERGED", "CLEAN"),
        "chump/nochecks": PrStatus(8, "OPEN", "CLEAN"),
    }
    assert made.calls == 1
    assert len(gh.calls()) == 1
    again = made.poll(watches)  # none of its checks is required: every failure counts
    assert again["chump/failing"] == PrStatus(5, "OPEN", "CLEAN", "failing", ("lint", "unit"))


def test_race_needs_a_merged_sibling_naming_the_gap() -> None:
    watch = Watch("chump/mine", "G-1")
    nodes = [
        merged_pr(10, "chump/mine", "G-1 my own earlier PR"),
        merged_pr(11, "chump/other", "G-10 is another gap"),
        merged_pr(12, "chump/other", "G-1 not merged", merged=False),
        {"number": 13},  # an issue hit of the search: no PR fields
    ]
    data = {"repository": {"b0": {"nodes": []}}, "s0": {"nodes": nodes}}
    assert github_parse.parse(data, [watch]) == {}
    nodes.append(merged_pr(14, "chump/sib", "chore(g-1): lower case id"))
    found = github_parse.parse(data, [watch])
    assert found == {"chump/mine": PrStatus(None, "OPEN", superseded_by=14)}


def rollup(contexts: object) -> dict[str, Any]:
    """A ``commits`` connection whose head commit has this ``contexts`` connection."""
    return {"nodes": [{"commit": {"statusCheckRollup": {"state": None, "contexts": contexts}}}]}


@pytest.mark.parametrize(
    "node",
    [
        pr(1, commits=None),
        pr(1, commits={"nodes": None}),
        pr(1, commits={"nodes": [None]}),
        pr(1, commits={"nodes": [{"commit": None}]}),
        pr(1, commits={"nodes": [{"commit": {"statusCheckRollup": None}}]}),
        pr(1, commits=rollup(None)),
        pr(1, commits=rollup({"nodes": None})),
        pr(1, checks=[None]),
        pr(1, checks=[run("unit", None)]),
        pr(1, checks=[run("unit", None, "IN_PROGRESS"), ctx("lint", None)]),
        pr(1, checks=[run("unit", "SUCCESS"), run("boot", "STARTUP_FAILURE")]),
    ],
)
def test_legitimate_nulls_are_pending(gh: FakeGh, node: dict[str, Any]) -> None:
    gh.answer(prs={"chump/a": [node]}, merged={"G-1": [None, {}]})
    result = provider(gh).poll([Watch("chump/a", "G-1")])
    assert result == {"chump/a": PrStatus(1, "OPEN", "CLEAN")}


def test_null_pull_request_and_merge_state(gh: FakeGh) -> None:
    gh.answer(prs={"chump/a": [None], "chump/b": [pr(2, mergeStateStatus=None)]})
    result = provider(gh).poll([Watch("chump/a", "G-1"), Watch("chump/b", "G-2")])
    assert result == {"chump/b": PrStatus(2, "OPEN", "")}


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
    first, sent = (variables(argv) for argv in gh.calls())
    assert "isRequired" not in first["query"]
    assert not [key for key in first if re.fullmatch(r"n\d+", key)]
    assert [sent[f"b{i}"] for i in range(count)] == [w.branch for w in watches]
    assert sent[f"s{count - 1}"].endswith(f'in:title "G-{count - 1}"')
    assert [sent[f"n{i}"] for i in range(count)] == [str(100 + i) for i in range(count)]
    assert f"isRequired(pullRequestNumber: $n{count - 1})" in sent["query"]


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


# --- required checks -----------------------------------------------------------------------


def test_required_checks_decide_from_the_second_poll(gh: FakeGh) -> None:
    checks = [run("unit", "SUCCESS", required=True), ctx("lint", "FAILURE"), run("docs", "ERROR")]
    gh.answer(
        prs={
            "chump/a": [pr(7, checks=checks)],
            "chump/b": [pr(8, checks=[run("unit", "SUCCESS"), run("docs", "FAILURE")])],
            "chump/c": [pr(9, checks=[run("unit", "FAILURE", required=True), *checks[1:]])],
        }
    )
    made = provider(gh)
    watches = [Watch(f"chump/{b}", f"G-{i}") for i, b in enumerate(["a", "b", "none", "c"])]
    first = made.poll(watches)
    assert first["chump/a"] == PrStatus(7, "OPEN", "CLEAN")  # required-ness not known yet
    second = made.poll(watches)
    assert second == {
        "chump/a": PrStatus(7, "OPEN", "CLEAN", "passing"),
        "chump/b": PrStatus(8, "OPEN", "CLEAN", "failing", ("docs",)),  # nothing required
        "chump/c": PrStatus(9, "OPEN", "CLEAN", "failing", ("unit",)),
    }
    assert made.calls == 2
    sent = variables(gh.calls()[1])
    assert (sent["n0"], sent["n1"], sent["n3"]) == ("7", "8", "9")
    assert "n2" not in sent
    assert "$n0: Int!" in sent["query"]
    assert "isRequired(pullRequestNumber: $n3)" in sent["query"]
    assert "$n2" not in sent["query"]


def test_required_ness_of_another_pr_number_is_not_trusted(gh: FakeGh) -> None:
    checks = [run("unit", "SUCCESS", required=True), ctx("lint", "FAILURE")]
    gh.answer(prs={"chump/a": [pr(7, checks=checks)]})
    made, watches = provider(gh), [Watch("chump/a", "G-1")]
    made.poll(watches)
    gh.answer(prs={"chump/a": [pr(12, checks=checks)]})  # the branch got a new PR
    assert made.poll(watches)["chump/a"].checks == "pending"  # #7's answer is not trusted
    assert made.poll(watches)["chump/a"].checks == "passing"
    assert [variables(argv).get("n0") for argv in gh.calls()] == [None, "7", "12"]


# --- answers of the wrong shape ------------------------------------------------------------


def answer(node: object = None, search: object = None, **data: object) -> str:
    """A raw ``gh`` answer for one branch: ``node`` its PR (if any), ``search`` its hits."""
    nodes = [] if node is None else [node]
    found: dict[str, object] = {"repository": {"b0": {"nodes": nodes}}, "s0": search or {}}
    return json.dumps({"data": {**found, **data}})


def check_node(**fields: object) -> str:
    return answer(pr(1, checks=[{**run("unit", "SUCCESS"), **fields}]))


MALFORMED = [
    (json.dumps({"data": {"repository": "x"}}), "repository is a string"),
    (json.dumps({"data": {"repository": None}}), "repository is null"),
    (json.dumps({"data": {"repository": {}}}), "b0 is missing"),
    (json.dumps({"data": {"repository": {"b0": [1]}}}), "b0 is a list"),
    (
        json.dumps({"data": {"repository": {"b0": {"nodes": [{"number": "x"}]}}}}),
        "b0 PR number is a string",
    ),
    (answer({"nodes": {"number": 1}}), "b0 PR number is null"),
    (json.dumps({"data": {"repository": {"b0": {"nodes": "x"}}}}), "b0.nodes is a string"),
    (json.dumps({"data": {"repository": {"b0": {"nodes": [7]}}}}), "b0 node is a number"),
    (answer(pr(True)), "b0 PR number is a boolean"),
    (answer(pr(1, state=None)), "b0 PR has no state"),
    (answer(pr(1, state=3)), "b0.state is a number"),
    (answer(pr(1, mergeStateStatus=["CLEAN"])), "b0.mergeStateStatus is a list"),
    (answer(pr(1, commits=[])), "b0.commits is a list"),
    (answer(pr(1, commits={"nodes": {}})), "b0.commits.nodes is an object"),
    (answer(pr(1, commits={"nodes": [{"commit": "abc"}]})), "b0.commit is a string"),
    (answer(pr(1, commits={"nodes": [{"commit": {"statusCheckRollup": []}}]})), "b0.rollup is"),
    (answer(pr(1, commits=rollup("x"))), "b0.contexts is a string"),
    (answer(pr(1, commits=rollup({"nodes": {"a": 1}}))), "b0.contexts.nodes is an object"),
    (answer(pr(1, commits=rollup({"nodes": ["x"]}))), "b0.contexts node is a string"),
    (check_node(__typename=None), "b0 check[0] is not a CheckRun or StatusContext"),
    (check_node(__typename="Commit"), "b0 check[0] is not a CheckRun or StatusContext"),
    (check_node(conclusion=7), "b0 check[0].conclusion is a number"),
    (check_node(name={"x": 1}), "b0 check[0].name is an object"),
    (check_node(isRequired="yes"), "b0 check[0].isRequired is a string"),
    (answer(search="x"), "s0 is a string"),
    (answer(search={"nodes": [{"number": "1", "mergedAt": "now"}]}), "s0 hit number is a str"),
    (answer(search={"nodes": [{"number": 1, "title": 5}]}), "s0 hit title is a number"),
    (answer(s0=None), "s0 is null"),
]


@pytest.mark.parametrize(("stdout", "expected"), MALFORMED)
def test_wrong_shapes_are_one_chump_error_and_back_off(
    gh: FakeGh, clock: Clock, stdout: str, expected: str
) -> None:
    gh.fail(0, stdout=stdout)
    made, watches = provider(gh, clock), [Watch("chump/a", "G-1")]
    with pytest.raises(ChumpError) as err:
        made.poll(watches)
    message = str(err.value)
    assert type(err.value) is ChumpError
    assert message.startswith("gh: unexpected answer: ")
    assert expected in message
    assert "\n" not in message
    clock.now += 1
    with pytest.raises(ChumpError) as again:
        made.poll(watches)
    assert (str(again.value), made.calls) == (message, 1)


def paths(value: object, path: tuple[Any, ...] = ()) -> Iterable[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    yield path
    if isinstance(value, dict | list):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            yield from paths(item, (*path, key))


def replaced(value: Any, path: tuple[Any, ...], new: object) -> Any:
    """A copy of ``value`` with the item at ``path`` set to ``new`` (or deleted: ``DELETE``)."""
    if not path:
        return new
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    inner = replaced(copy[path[0]], path[1:], new)
    if inner is DELETE:
        del copy[path[0]]
    else:
        copy[path[0]] = inner
    return copy


DELETE = object()
JUNK = ["x", 7, 1.5, True, None, [], {}, [None], ["x"], [7], {"nodes": "x"}, DELETE]


def test_any_mangled_answer_parses_or_is_one_chump_error() -> None:
    checks = [run("unit", "FAILURE", required=True), ctx("lint", "SUCCESS"), None]
    search = {"nodes": [merged_pr(90, "chump/other", "G-1 too"), {}, None]}
    valid = json.loads(answer(pr(1, checks=checks), search))["data"]
    watches, asked = [Watch("chump/a", "G-1")], {"chump/a": 1}
    assert github_parse.parse(valid, watches, asked) == {
        "chump/a": PrStatus(1, "OPEN", "CLEAN", "failing", ("unit",), superseded_by=90)
    }
    tried, errors = 0, []
    for path in list(paths(valid))[1:]:
        for junk in JUNK:
            tried += 1
            try:
                github_parse.parse(replaced(valid, path, junk), watches, asked)
            except ChumpError as exc:  # any other exception fails the test
                errors.append(str(exc))
    assert tried > 300
    assert len(errors) > 100
    assert [e for e in errors if not re.fullmatch(r"gh: unexpected answer: [^\n]+", e)] == []


def test_a_parse_bug_still_surfaces_as_chump_error(
    gh: FakeGh, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> dict[str, PrStatus]:
        raise AttributeError("'str' object has no attribute 'get'")

    monkeypatch.setattr(github_parse, "parse", broken)
    with pytest.raises(ChumpError) as err:
        provider(gh).poll([Watch("chump/a", "G-1")])
    assert str(err.value) == "gh: unexpected answer: AttributeError"


def test_deeply_nested_json_is_not_json(gh: FakeGh) -> None:
    gh.fail(0, stdout="[" * 100_000 + "]" * 100_000)
    with pytest.raises(ChumpError, match="answer is not JSON"):
        provider(gh).poll([Watch("chump/a", "G-1")])
