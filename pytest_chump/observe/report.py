"""``chump report``'s page: a repository's dispatches since a moment, drawn by the dashboard's
own script from data written into the page, so the file opens anywhere (``file://``, an
attachment, a CI artifact) without a server and without fetching anything."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pytest_chump.core.config import Settings
from pytest_chump.core.errors import UsageError
from pytest_chump.observe.page import report_html
from pytest_chump.observe.snapshot import history, reading


def build_report(
    repo_root: Path, settings: Settings, since: float
) -> tuple[str, dict[str, object]]:
    """The report's HTML and the history it shows (empty when nothing was ever dispatched)."""
    with reading(repo_root) as store:
        data = history(store, settings, since)
    return report_html(data), data


def write_report(
    path: Path, repo_root: Path, settings: Settings, since: float
) -> dict[str, object]:
    """Write the report of ``repo_root`` since ``since`` (epoch seconds) to ``path``, whole
    or not at all (a reader never sees half a page); return the history it shows.

    A path that cannot be written is a :class:`UsageError`."""
    html, data = build_report(repo_root, settings, since)
    _write_whole(path, html)
    return data


def _write_whole(path: Path, text: str) -> None:
    folder = path.parent
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain write would (mkstemp makes it 0600)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
