"""Scripted stand-ins for agent CLIs, started by the runner and spawner tests.

``wrap`` writes an executable with a ``#!<python>`` shebang that runs one of these scripts,
so a test can point ``CHUMP_CLAUDE_BIN``, an option ``binary`` or ``PATH`` at it.
"""

from __future__ import annotations

import sys
from pathlib import Path

AGENTS = Path(__file__).resolve().parent


def script(name: str) -> str:
    """The path of the scripted agent ``name`` (e.g. ``probe.py``)."""
    return str(AGENTS / name)


def wrap(name: str, dest_dir: Path, command: str) -> Path:
    """Write ``dest_dir/command``, an executable running ``name``; it exports its own path
    as ``AGENT_WRAPPER`` so a probe can tell which wrapper was started."""
    path = dest_dir / command
    path.write_text(
        f"#!{sys.executable}\n"
        "import os, runpy, sys\n"
        "os.environ['AGENT_WRAPPER'] = __file__\n"
        f"sys.path.insert(0, {str(AGENTS)!r})\n"
        f"runpy.run_path({script(name)!r}, run_name='__main__')\n",
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path
