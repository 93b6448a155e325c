"""Reads the answer to the ``github`` provider's query into one ``PrStatus`` per branch.

Every value is checked before it is used. A null where GitHub may answer one (no commit, no
status-check rollup, no conclusion yet, a null list or list item) means "nothing there": the
checks stay pending. Any other value of the wrong shape raises one ``ChumpError``,
``gh: unexpected answer: <what>``, so the provider backs off instead of crashing the loop.

Check rule (the one ``gh pr checks`` uses): a CheckRun conclusion or StatusContext state in
``FAILED`` fails, ``NEUTRAL`` ones are done without failing, ``SUCCESS`` passes, anything else
(``STARTUP_FAILURE``, ``STALE``, null, ...) is pending. When the query asked ``isRequired``
for the PR's own number and at least one check is required, only required checks count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from pytest_chump.core.errors import ChumpError
from pytest_chump.core.protocols import PrStatus, Watch

FAILED = frozenset({"FAILURE", "ERROR", "TIMED_OUT", "ACTION_REQUIRED"})
NEUTRAL = frozenset({"CANCELLED", "SKIPPED", "NEUTRAL"})
PASSED = "SUCCESS"
_CHECK_FIELDS = {"CheckRun": ("name", "conclusion"), "StatusContext": ("context", "state")}
_JSON_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}


class Check(NamedTuple):
    """One check of a PR's head commit."""

    name: str
    verdict: str  # failed / neutral / passed / pending
    required: bool | None  # None: not asked (or not answered)


def malformed(what: str) -> ChumpError:
    """The one error for an answer of the wrong shape."""
    return ChumpError(f"gh: unexpected answer: {what}")


def parse(
    data: Mapping[str, Any], watches: Sequence[Watch], asked: Mapping[str, int] | None = None
) -> dict[str, PrStatus]:
    """PR state per branch from the ``data`` of the answer (branches with nothing: absent).

    ``asked`` maps a branch to the PR number its ``isRequired`` fields were asked for.
    """
    asked = asked or {}
    repository = _need(data, "repository", "repository")
    result: dict[str, PrStatus] = {}
    for i, watch in enumerate(watches):
        prs = _nodes(_need(repository, f"b{i}", f"b{i}"), f"b{i}")
        status = _status(prs[0], asked.get(watch.branch), f"b{i}") if prs else None
        sibling = _sibling(_nodes(_need(data, f"s{i}", f"s{i}"), f"s{i}"), watch, f"s{i}")
        if sibling is not None and (status is None or status.state != "MERGED"):
            status = _superseded(status, sibling)
        if status is not None:
            result[watch.branch] = status
    return result


def check_state(
    contexts: Sequence[Mapping[str, Any]], *, required_known: bool = False, where: str = "check"
) -> tuple[str, tuple[str, ...]]:
    """("failing", names) if a check failed, "passing" if all are done, else "pending".

    With ``required_known`` (``isRequired`` was asked for this PR and every check answered)
    and at least one required check, only the required checks count; otherwise all do.
    No checks at all is "pending": CI may not have reported yet.
    """
    checks = [check(c, f"{where}[{i}]") for i, c in enumerate(contexts)]
    if required_known and all(c.required is not None for c in checks):
        checks = [c for c in checks if c.required] or checks
    failed = sorted({c.name for c in checks if c.verdict == "failed"})
    if failed:
        return "failing", tuple(failed)
    if checks and all(c.verdict in ("passed", "neutral") for c in checks):
        return "passing", ()
    return "pending", ()


def check(context: Mapping[str, Any], where: str = "check") -> Check:
    """One CheckRun or StatusContext node as a ``Check``."""
    kind = context.get("__typename")
    if not isinstance(kind, str) or kind not in _CHECK_FIELDS:
        raise malformed(f"{where} is not a CheckRun or StatusContext")
    name_key, value_key = _CHECK_FIELDS[kind]
    name = _text(context.get(name_key), f"{where}.{name_key}") or "unnamed check"
    value = _text(context.get(value_key), f"{where}.{value_key}")
    required = context.get("isRequired")
    if required is not None and not isinstance(required, bool):
        raise malformed(f"{where}.isRequired is {_kind(required)}")
    return Check(name, verdict(value), required)


def verdict(value: str | None) -> str:
    """failed / neutral / passed / pending for a conclusion or a status state."""
    value = (value or "").upper()
    if value in FAILED:
        return "failed"
    if value in NEUTRAL:
        return "neutral"
    return "passed" if value == PASSED else "pending"


def _status(pr: Mapping[str, Any], asked: int | None, where: str) -> PrStatus:
    number = pr.get("number")
    if not isinstance(number, int) or isinstance(number, bool):
        raise malformed(f"{where} PR number is {_kind(number)}")
    state = _text(pr.get("state"), f"{where}.state")
    if not state:
        raise malformed(f"{where} PR has no state")
    state = state.upper()
    merge_state = _text(pr.get("mergeStateStatus"), f"{where}.mergeStateStatus") or ""
    contexts = _contexts(pr, where)
    checks, failing = check_state(contexts, required_known=asked == number, where=f"{where} check")
    if checks == "failing" and asked != number:
        # first sight of this PR: which checks are required is asked on the next poll; a
        # failed optional check must not fail the dispatch meanwhile
        checks, failing = "pending", ()
    detail = f"pull request #{number} closed unmerged" if state == "CLOSED" else ""
    review = "changes-requested" if _changes_requested(pr, where) else ""
    return PrStatus(number, state, merge_state, checks, failing, "", detail, review=review)


def _changes_requested(pr: Mapping[str, Any], where: str) -> bool:
    """Whether a review asks for changes *of the PR's current head*: a request made before
    the agent pushed its answer is not a new verdict."""
    head = _text(pr.get("headRefOid"), f"{where}.headRefOid")
    for review in _nodes(pr.get("latestReviews"), f"{where}.latestReviews"):
        state = _text(review.get("state"), f"{where} review state") or ""
        commit = _object(review.get("commit"), f"{where} review commit") or {}
        oid = _text(commit.get("oid"), f"{where} review commit oid")
        if state.upper() == "CHANGES_REQUESTED" and head and oid == head:
            return True
    return False


def _contexts(pr: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """The check nodes of the PR's head commit; a null anywhere on the way means none."""
    commits = _nodes(pr.get("commits"), f"{where}.commits")
    commit = _object(commits[-1].get("commit"), f"{where}.commit") if commits else None
    rollup = _object(commit.get("statusCheckRollup"), f"{where}.rollup") if commit else None
    return _nodes(rollup.get("contexts"), f"{where}.contexts") if rollup else []


def _superseded(status: PrStatus | None, sibling: int) -> PrStatus:
    if status is None:
        return PrStatus(number=None, state="OPEN", superseded_by=sibling)
    return replace(status, superseded_by=sibling)


def _sibling(nodes: Sequence[Mapping[str, Any]], watch: Watch, where: str) -> int | None:
    """The lowest number of a merged PR from another branch whose title names the gap.

    Search hits that are issues come back as empty objects (only PR fields are selected).
    """
    mention = re.compile(rf"(?<![\w-]){re.escape(watch.gap_id)}(?![\w-])", re.I)
    numbers = []
    for node in nodes:
        number = node.get("number")
        if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
            raise malformed(f"{where} hit number is {_kind(number)}")
        merged_at = _text(node.get("mergedAt"), f"{where} hit mergedAt")
        head = _text(node.get("headRefName"), f"{where} hit headRefName")
        title = _text(node.get("title"), f"{where} hit title") or ""
        if number is not None and merged_at and head != watch.branch and mention.search(title):
            numbers.append(number)
    return min(numbers, default=None)


def _need(parent: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    """A field GitHub never answers null (the connection behind an alias)."""
    value = parent.get(key)
    if not isinstance(value, dict):
        raise malformed(f"{where} is {'missing' if key not in parent else _kind(value)}")
    return value


def _object(value: object, where: str) -> dict[str, Any] | None:
    """An object or null; anything else is malformed."""
    if value is None or isinstance(value, dict):
        return value
    raise malformed(f"{where} is {_kind(value)}")


def _text(value: object, where: str) -> str | None:
    """A string or null; anything else is malformed."""
    if value is None or isinstance(value, str):
        return value
    raise malformed(f"{where} is {_kind(value)}")


def _nodes(connection: object, where: str) -> list[dict[str, Any]]:
    """The objects in a connection's ``nodes``; a null connection, list or item means none."""
    found = _object(connection, where)
    nodes = found.get("nodes") if found is not None else None
    if nodes is None:
        return []
    if not isinstance(nodes, list):
        raise malformed(f"{where}.nodes is {_kind(nodes)}")
    items = (_object(node, f"{where} node") for node in nodes)
    return [item for item in items if item is not None]


def _kind(value: object) -> str:
    """The JSON kind of ``value``, for messages (never the value: it may be long)."""
    if value is None:
        return "null"
    return _JSON_KINDS.get(type(value), "a number")
