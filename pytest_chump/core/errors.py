"""Errors the user can fix: printed as one line each, exit status 2, never a traceback.

Anything that is not a ``ChumpError`` is a bug in chump and may show a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_USAGE = 2


class ChumpError(Exception):
    """A problem caused by input or environment; its message is shown without a traceback."""

    exit_code: int = EXIT_USAGE
    located = False  # True: lines start with their own location and get no prefix

    def lines(self) -> list[str]:
        """The message as lines (one problem per line)."""
        return [str(self)]

    def messages(self) -> list[str]:
        """The lines as shown to the user: ``chump: error: …``, unless they carry their own
        location (``path:line: field: message``); control characters escaped."""
        from pytest_chump.core.redact import printable

        prefix = "" if self.located else "chump: error: "
        return [printable(f"{prefix}{line}") for line in self.lines()]


class UsageError(ChumpError):
    """A bad flag, option value or configuration entry."""


class BacklogError(ChumpError):
    """A backlog that cannot be used; carries every problem found, one per line.

    Its lines already say where (``path:line: field: message``) and are printed as they are,
    so editors and CI annotate them like a compiler's.
    """

    located = True

    def __init__(self, problems: Iterable[object]) -> None:
        items = list(problems)
        self.records = [p for p in items if not isinstance(p, str)]  # structured problems
        self.problems = [str(p) for p in items]
        super().__init__("\n".join(self.problems))

    def lines(self) -> list[str]:
        return list(self.problems)


class PluginError(ChumpError):
    """A plugin name that is unknown or registered twice."""


class BinaryMissing(ChumpError):
    """An agent's program is not there (or not executable): every dispatch to that spawner
    would fail the same way, so its circuit opens."""
