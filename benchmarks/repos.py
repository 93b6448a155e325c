"""The repository a benchmark runs real agents in: a bare origin and a clone on ``main``, a
backlog, a ``[tool.chump]`` configuration whose ``script`` spawner runs a small agent, all
committed and pushed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAD = '[tool.chump]\nspawner = "script"\npr_provider = "git"\n'


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def project(root: Path, gap_lines: list[str], settings: str, agent: str, extra: str = "") -> Path:
    """``root/work`` (cloned from ``root/origin.git``) with ``gap_lines`` as its backlog,
    ``settings`` (lines of ``[tool.chump]``) and ``extra`` tables, the ``script`` spawner
    running ``agent`` (Python source, written to ``root/agent.py``)."""
    origin, clone = root / "origin.git", root / "work"
    git(root, "init", "--quiet", "--bare", "-b", "main", str(origin))
    git(root, "clone", "--quiet", str(origin), str(clone))
    git(clone, "symbolic-ref", "HEAD", "refs/heads/main")
    (clone / "docs").mkdir()
    (clone / "docs/gaps.yaml").write_text("gaps:\n" + "\n".join(gap_lines) + "\n")
    agent_path = root / "agent.py"
    agent_path.write_text(agent)
    script = f'[tool.chump.spawners.script]\ncommand = ["{sys.executable}", "{agent_path}"]\n'
    (clone / "pyproject.toml").write_text(f"{HEAD}{settings.strip()}\n\n{script}{extra}")
    git(clone, "add", "-A")
    git(clone, "-c", "user.name=b", "-c", "user.email=b@x", "commit", "--quiet", "-m", "init")
    git(clone, "push", "--quiet", "-u", "origin", "main")
    return clone
