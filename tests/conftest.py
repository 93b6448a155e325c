"""Shared fixtures for chump's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "pytest_chump" / "selftest" / "synthetic-backlog.yaml"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CHUMP_* or git hook variable leaks in; git ignores the user's config; fixed identity."""
    import os

    for name in list(os.environ):
        if name.startswith("CHUMP_") or name in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test User")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.invalid")


@pytest.fixture
def write_backlog(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write YAML text to ``<tmp>/docs/gaps.yaml`` (or another relative path); return the path."""

    def write(text: str, name: str = "docs/gaps.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write
