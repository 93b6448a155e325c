"""pytest entry point (``pytest11``): registers chump's options. Loaded into every pytest run.

It must stay cheap to import: only argparse-level work here; yaml, git and sqlite are
imported lazily by the code that needs them.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chump", "chump agent orchestrator")
    group.addoption(
        "--chump-backlog",
        dest="chump_backlog",
        default=None,
        help="backlog file for chump (default: [tool.chump] backlog or docs/gaps.yaml)",
    )
