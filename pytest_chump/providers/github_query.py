"""Builds the one GraphQL query the ``github`` provider sends per poll.

Kept apart from the process handling so the query shape is a pure function: branch names and
search strings only ever travel as GraphQL variables (``-f``, raw strings), and the PR numbers
the provider remembers as ``Int`` variables (``-F``, numbers chump produced itself).
The answer is read by ``github_parse``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from pytest_chump.core.protocols import Watch

_PR_FIELDS = """fragment chumpPr on PullRequest {
  number state mergeStateStatus headRefName headRefOid
  latestReviews(first: 20) { nodes { state commit { oid } } }
  commits(last: 1) { nodes { commit { statusCheckRollup { state
    contexts(first: 100) { nodes { __typename
      ... on CheckRun { name status conclusion }
      ... on StatusContext { context state } } } } } } }
}"""
_PR_ARGS = (
    "baseRefName: $base, first: 1, states: [OPEN, CLOSED, MERGED], "
    "orderBy: {field: CREATED_AT, direction: DESC}"
)
# Merged by GraphQL into the fragment's identical ``commits``/``contexts`` selections.
_REQUIRED = (
    " commits(last: 1) {{ nodes {{ commit {{ statusCheckRollup {{ contexts(first: 100) {{"
    " nodes {{ ... on CheckRun {{ isRequired(pullRequestNumber: $n{i}) }}"
    " ... on StatusContext {{ isRequired(pullRequestNumber: $n{i}) }} }} }} }} }} }} }}"
)
_SEARCH_FIELDS = "nodes { ... on PullRequest { number headRefName title mergedAt } }"


def build(
    owner: str,
    name: str,
    base: str,
    watches: Sequence[Watch],
    numbers: Mapping[str, int] | None = None,
) -> list[str]:
    """The ``gh api graphql`` arguments (after ``graphql``): the query, then the variables.

    ``numbers`` holds the PR number already known for some branches: for those the query also
    asks which checks are required (variable ``nN``). Strings go as ``-f`` (raw: no ``@file``
    or number conversion); only those integers go as ``-F``.
    """
    numbers = numbers or {}
    strings = {"owner": owner, "repo": name, "base": base}
    integers: dict[int, int] = {}
    for i, watch in enumerate(watches):
        strings[f"b{i}"] = watch.branch
        strings[f"s{i}"] = race_search(owner, name, base, watch)
        if watch.branch in numbers:
            integers[i] = int(numbers[watch.branch])
    args = ["-f", f"query={query_text(len(watches), integers)}"]
    for key, value in strings.items():
        args += ["-f", f"{key}={value}"]
    for i, number in integers.items():
        args += ["-F", f"n{i}={number:d}"]
    return args


def query_text(count: int, numbered: Collection[int] = ()) -> str:
    """The query for ``count`` branches; it holds variable names only, never a value.

    Alias ``bN`` is the newest PR of branch N into ``$base`` (with ``isRequired`` of its checks
    when N is in ``numbered``); alias ``sN`` searches merged PRs whose title names the gap of
    branch N (a race lost to a sibling branch).
    """
    decls = ["$owner: String!", "$repo: String!", "$base: String!"]
    decls += [f"$b{i}: String!, $s{i}: String!" for i in range(count)]
    decls += [f"$n{i}: Int!" for i in range(count) if i in numbered]
    prs = "".join(
        f"\n  b{i}: pullRequests(headRefName: $b{i}, {_PR_ARGS}) "
        f"{{ nodes {{ ...chumpPr{_REQUIRED.format(i=i) if i in numbered else ''} }} }}"
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
