"""The ``github`` backlog source: the repository's GitHub issues that carry a label.

One ``gh issue list --json ...`` call per load (the user's own ``gh auth``). An issue #12
becomes gap ``GH-12``: its title and body; priority from a label ``P0``..``P4`` (or
``priority:P1``), effort from ``effort:s``, kind from ``kind:system``, status from
``status:<name>`` while open; ``depends on #7`` (or ``blocked by #7, #9``) lines in the body
become dependencies; closed issues are ``done`` as of the day they were closed. The gaps get
the same checks as a YAML backlog; problems read ``github:<repo>: #12.priority: ...``.

Options (``[tool.chump.backlog_sources.github]``): ``label`` (default ``chump``), ``repo``
(``owner/name``; default: the repository ``gh`` finds from the checkout), ``limit`` (most
issues read, default 1000).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from pytest_chump import hookimpl
from pytest_chump.backlog import check_mappings
from pytest_chump.core.config import Settings
from pytest_chump.core.errors import BacklogError, UsageError
from pytest_chump.core.gh import failure_message, one_line, run_gh
from pytest_chump.core.protocols import Register
from pytest_chump.core.records import Backlog, Problem

FIELDS = "number,title,body,labels,state,closedAt"
TIMEOUT_S = 60.0
OPTIONS = ("label", "repo", "limit")
_PRIORITY = re.compile(r"(?:priority\s*[:/ ]\s*)?(p[0-4])", re.IGNORECASE)
_DEPENDS = re.compile(r"^\W*(?:depends\s+on|blocked\s+by)\b:?(.*)$", re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"(?<![\w/.-])#(\d+)\b")  # not other/repo#4: another repository
_PREFIXED = ("effort", "kind", "status")


class GithubIssues:
    """Reads gaps from GitHub issues through ``gh``."""

    name = "github"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        options = settings.source_options(self.name)
        for key in options:
            if key not in OPTIONS:
                raise _option_error(key, f"unknown option (valid: {', '.join(OPTIONS)})")
        self.label = _text(options, "label", "chump")
        self.repo = _text(options, "repo", "")
        self.limit = options.get("limit", 1000)
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise _option_error("limit", f"expected a positive integer, got {self.limit!r}")

    @property
    def origin(self) -> str:
        return f"github:{self.repo or 'issues'}"

    def load(self) -> Backlog:
        argv = [self.settings.gh_bin, "issue", "list", "--label", self.label, "--state", "all"]
        argv += ["--json", FIELDS, "--limit", str(self.limit)]
        argv += ["--repo", self.repo] if self.repo else []
        proc = run_gh(argv, self.settings.repo_root, TIMEOUT_S, "gh issue list")
        if proc.returncode != 0:
            self._refuse(failure_message(proc.returncode, proc.stderr, None, "gh issue list"))
        issues = _issues(proc.stdout)
        if issues is None:
            self._refuse(f"gh issue list: unexpected answer: {one_line(proc.stdout[:80])!r}")
        items = [(f"#{issue['number']}", gap_of(issue)) for issue in issues]
        found = check_mappings(items, self.origin, self.settings.status_aliases)
        if len(issues) >= self.limit:  # there may be more than were read
            cut = Problem(self.origin, 0, "limit", f"only the first {self.limit} issues were read")
            found = Backlog(found.path, found.gaps, (*found.problems, cut))
        return found

    def _refuse(self, message: str) -> NoReturn:
        """The backlog cannot be read at all: one fatal problem (exit 2, nothing started)."""
        raise BacklogError([Problem(self.origin, 0, "gh", one_line(message), None, True)])


def _issues(stdout: str) -> list[dict[str, Any]] | None:
    """The issues of ``gh issue list --json``, or None when the answer has another shape."""
    try:
        data = json.loads(stdout)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, list):
        return None
    good = all(isinstance(i, dict) and isinstance(i.get("number"), int) for i in data)
    return data if good else None


def gap_of(issue: Mapping[str, Any]) -> dict[str, object]:
    """The gap an issue describes (values left as found: the checks judge them)."""
    labels = [_label(label) for label in issue.get("labels") or []]
    closed = str(issue.get("state", "")).upper() == "CLOSED"
    gap: dict[str, object] = {
        "id": f"GH-{issue['number']}",
        "title": issue.get("title"),
        "description": issue.get("body") or None,
        "depends_on": dependencies(str(issue.get("body") or "")) or None,
    }
    found: dict[str, list[str]] = {}
    for name in labels:
        if m := _PRIORITY.fullmatch(name.strip()):
            found.setdefault("priority", []).append(m.group(1).upper())
            continue
        key, sep, value = name.partition(":")
        if sep and key.strip().lower() in _PREFIXED and value.strip():
            found.setdefault(key.strip().lower(), []).append(value.strip().lower())
    for key, values in found.items():  # two different labels of one kind: a problem, not a pick
        unique = sorted(set(values))
        gap[key] = unique[0] if len(unique) == 1 else unique
    if closed:
        gap["status"] = "done"
        closed_at = issue.get("closedAt")
        if isinstance(closed_at, str) and len(closed_at) >= 10:
            gap["closed_date"] = closed_at[:10]
    else:
        gap.setdefault("status", "open")
    return gap


def _label(label: object) -> str:
    """A label's name, however ``gh`` gave it (an object, or a plain string)."""
    if isinstance(label, Mapping):
        return str(label.get("name", ""))
    return str(label) if isinstance(label, str) else ""


def dependencies(body: str) -> list[str]:
    """``GH-<n>`` for every ``#n`` on a ``depends on`` / ``blocked by`` line of the body."""
    found: list[str] = []
    for line in _DEPENDS.finditer(body):
        for number in _NUMBER.findall(line.group(1)):
            if f"GH-{number}" not in found:
                found.append(f"GH-{number}")
    return found


def _text(options: Mapping[str, object], key: str, default: str) -> str:
    value = options.get(key, default)
    if not isinstance(value, str) or (key != "repo" and not value.strip()):
        raise _option_error(key, f"expected a string, got {value!r}")
    return value.strip()


def _option_error(key: str, problem: str) -> UsageError:
    return UsageError(f"[tool.chump.backlog_sources.github] {key}: {problem}")


@hookimpl
def chump_register_backlog_sources(register: Register) -> None:
    register("github", GithubIssues)
