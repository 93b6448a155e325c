"""The pytest plugin is imported by every pytest run: it must not pull in yaml, git or sqlite."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("yaml", "git", "sqlite3", "_sqlite3", "tomllib", "pytest_chump.backlog")


def test_plugin_import_is_cheap() -> None:
    code = (
        "import sys, pytest_chump.pytest_plugin\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_importtime_shows_no_heavy_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest_chump.pytest_plugin"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert not imported & {"yaml", "git", "sqlite3"}
