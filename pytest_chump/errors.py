"""Errors the user can fix: printed as one line each, exit status 2, never a traceback.

Anything that is not a ``ChumpError`` is a bug in chump and may show a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_USAGE = 2


class ChumpError(Exception):
    """A problem caused by input or environment; its message is shown without a traceback."""

    exit_code: int = EXIT_USAGE

    def lines(self) -> list[str]:
        """The message as the lines to print (one problem per line)."""
        return [str(self)]


class UsageError(ChumpError):
    """A bad flag, option value or configuration entry."""


class BacklogError(ChumpError):
    """A backlog that cannot be used; carries every problem found, one per line."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def lines(self) -> list[str]:
        return list(self.problems)


class PluginError(ChumpError):
    """A plugin name that is unknown or registered twice."""
