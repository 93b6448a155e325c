"""Builds the one GraphQL query the ``github`` provider sends per poll, and reads its answer.

Kept apart from the process handling so the query shape and the state mapping are pure
functions: branch names and search strings only ever travel as GraphQL variables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pytest_chump.contracts import PrStatus, Watch

FAILED = frozenset({"FAILURE", "ERROR", "TIMED_OUT", "ACTION_REQUIRED", "STARTUP_FAILURE"})
NEUTRAL = frozenset({"CANCELLED", "SKIPPED", "NEUTRAL"})
PASSED = "SUCCESS"

_PR_FIELDS = """fragment chumpPr on PullRequest {
  number state mergeStateStatus headRefName
  commits(last: 1) { nodes { commit { statusCheckRollup { state
    contexts(first: 100) { nodes { __typename
      ... on CheckRun { name status conclusion }
      ... on StatusContext { context state } } } } } } }
}"""
_PR_ARGS = (
    "baseRefName: $base, first: 1, states: [OPEN, CLOSED, MERGED], "
    "orderBy: {field: CREATED_AT, direction: DESC}"
)
_SEARCH_FIELDS = "nodes { ... on PullRequest { number headRefName title mergedAt } }"


def build(owner: str, name: str, base: str, watches: Sequence[Watch]) -> list[str]:
    """The ``gh api graphql`` arguments (after ``graphql``): the query, then ``-f`` variables.

    ``-f`` (not ``-F``) keeps every value a raw string: no ``@file`` or number conversion.
    """
    variables = {"owner": owner, "repo": name, "base": base}
    for i, watch in enumerate(watches):
        variables[f"b{i}"] = watch.branch
        variables[f"s{i}"] = race_search(owner, name, base, watch)
    args = ["-f", f"query={query_text(len(watches))}"]
    for key, value in variables.items():
        args += ["-f", f"{key}={value}"]
    return args


def query_text(count: int) -> str:
    """The query for ``count`` branches; it holds variable names only, never a value.

    Alias ``bN`` is the newest PR of branch N into ``$base``; alias ``sN`` searches merged PRs
    whose title names the gap of branch N (a race lost to a sibling branch).
    """
    decls = ["$owner: String!", "$repo: String!", "$base: String!"]
    decls += [f"$b{i}: String!, $s{i}: String!" for i in range(count)]
    prs = "".join(
        f"\n  b{i}: pullRequests(headRefName: $b{i}, {_PR_ARGS}) {{ nodes {{ ...chumpPr }} }}"
        for i in range(count)
    )
    searches = "".join(
        f"\n s{i}: search(query: $s{i}, type: ISSUE, first: 5) {{ {_SEARCH_FIELDS} }}"
        for i in range(count)
    )
    repository = f"repository(owner: $owner, name: $repo) {{{prs}\n }}"
    return f"query({', '.join(decls)}) {{\n {repository}{searches}\n}}\n{_PR_FIELDS}"


def race_search(owner: str, name: str, base: str, watch: Watch) -> str:
    """GitHub search syntax for merged PRs into ``base`` whose title mentions the gap id."""
    gap = watch.gap_id.replace('"', "")
    return f'repo:{owner}/{name} is:pr is:merged base:{base} in:title "{gap}"'


def parse(data: Mapping[str, Any], watches: Sequence[Watch]) -> dict[str, PrStatus]:
    """PR state per branch from the ``data`` of the answer (branches with nothing: absent)."""
    repository = data.get("repository") or {}
    result: dict[str, PrStatus] = {}
    for i, watch in enumerate(watches):
        nodes = _nodes(repository.get(f"b{i}"))
        sibling = _sibling(_nodes(data.get(f"s{i}")), watch)
        status = _status(nodes[0]) if nodes else None
        if sibling is not None and (status is None or status.state != "MERGED"):
            status = _superseded(status, sibling)
        if status is not None:
            result[watch.branch] = status
    return result


def _nodes(connection: object) -> list[dict[str, Any]]:
    nodes = connection.get("nodes") if isinstance(connection, dict) else None
    return [n for n in nodes or () if isinstance(n, dict)]


def _superseded(status: PrStatus | None, sibling: int) -> PrStatus:
    if status is None:
        return PrStatus(number=None, state="OPEN", superseded_by=sibling)
    return replace(status, superseded_by=sibling)


def _sibling(nodes: Sequence[Mapping[str, Any]], watch: Watch) -> int | None:
    """The lowest number of a merged PR from another branch whose title names the gap."""
    mention = re.compile(rf"(?<![\w-]){re.escape(watch.gap_id)}(?![\w-])", re.I)
    numbers = [
        int(n["number"])
        for n in nodes
        if n.get("mergedAt")
        and isinstance(n.get("number"), int)
        and n.get("headRefName") != watch.branch
        and mention.search(str(n.get("title") or ""))
    ]
    return min(numbers, default=None)


def _status(pr: Mapping[str, Any]) -> PrStatus:
    number = pr.get("number") if isinstance(pr.get("number"), int) else None
    state = str(pr.get("state") or "OPEN").upper()
    checks, failing = check_state(_contexts(pr))
    detail = f"pull request #{number} closed unmerged" if state == "CLOSED" else ""
    merge_state = str(pr.get("mergeStateStatus") or "")
    return PrStatus(number, state, merge_state, checks, failing, "", detail)


def _contexts(pr: Mapping[str, Any]) -> list[dict[str, Any]]:
    commits = _nodes(pr.get("commits"))
    rollup = commits[-1].get("commit", {}).get("statusCheckRollup") if commits else None
    return _nodes(rollup.get("contexts")) if isinstance(rollup, dict) else []


def check_state(contexts: Sequence[Mapping[str, Any]]) -> tuple[str, tuple[str, ...]]:
    """("failing", names) if any check failed, "passing" if all are done, else "pending".

    Every check counts (required-ness needs the PR number, unknown when the query is built);
    no checks at all is "pending": CI may not have reported yet.
    """
    verdicts = [(_check_name(c), _verdict(c)) for c in contexts]
    failed = sorted({name for name, verdict in verdicts if verdict == "failed"})
    if failed:
        return "failing", tuple(failed)
    if verdicts and all(verdict in ("passed", "neutral") for _, verdict in verdicts):
        return "passing", ()
    return "pending", ()


def _check_name(context: Mapping[str, Any]) -> str:
    return str(context.get("name") or context.get("context") or "unnamed check")


def _verdict(context: Mapping[str, Any]) -> str:
    """failed / neutral / passed / pending for one CheckRun or StatusContext."""
    if context.get("__typename") == "StatusContext":
        value = context.get("state")
    else:
        value = context.get("conclusion")
    value = str(value or "").upper()
    if value in FAILED:
        return "failed"
    if value in NEUTRAL:
        return "neutral"
    return "passed" if value == PASSED else "pending"
