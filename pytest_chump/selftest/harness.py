"""What the fixtures for plugin authors build: the repository (:class:`ChumpRepo`), and a run of
the real orchestrator loop over it (:func:`runner`, returning a :class:`RunResult`).

Kept apart from :mod:`~pytest_chump.selftest.fixtures`, which every pytest run registers and so
must be cheap to import: this module is imported when a fixture is used.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from pytest_chump.agents.fake import FakeSpawner
    from pytest_chump.core.protocols import PrProvider, Sink, Spawner
    from pytest_chump.core.records import Outcome, Reflection
    from pytest_chump.reflect.memory_sink import MemorySink

IDENTITY = {"name": "chump test", "email": "chump-test@example.invalid"}


@dataclass
class ChumpRepo:
    """A clone (``root``) of a bare ``origin`` on branch ``main``."""

    root: Path
    origin: Path

    def git(self, *args: str) -> str:
        return _git(self.root, *args)

    def write_backlog(self, gaps: str | Sequence[Mapping[str, Any]]) -> Path:
        """Write ``docs/gaps.yaml`` (YAML text, or a list of gap mappings) and commit it."""
        import yaml

        path = self.root / "docs" / "gaps.yaml"
        text = gaps if isinstance(gaps, str) else yaml.safe_dump({"gaps": list(gaps)})
        path.write_text(text, encoding="utf-8")
        self.commit("backlog")
        return path

    def commit(self, message: str) -> None:
        """Commit everything and push it to origin's main."""
        self.git("add", "-A")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        self.git("push", "--quiet", "origin", "HEAD:main")
        self.git("fetch", "--quiet", "origin")


def _git(cwd: Path, *args: str) -> str:
    ident = ["-c", f"user.name={IDENTITY['name']}", "-c", f"user.email={IDENTITY['email']}"]
    proc = subprocess.run(
        ["git", *ident, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


@dataclass
class RunResult:
    """What a ``chump_run`` call produced."""

    outcomes: dict[str, Outcome]
    reflections: list[Reflection]
    output: str
    counts: dict[str, int] = field(default_factory=dict)


def new_repo(tmp_path: Path) -> ChumpRepo:
    """A git repository (``main``) with a bare origin and an empty backlog, under ``tmp_path``."""
    origin, root = tmp_path / "origin.git", tmp_path / "repo"
    _git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(origin))
    _git(tmp_path, "clone", "--quiet", str(origin), str(root))
    _git(root, "symbolic-ref", "HEAD", "refs/heads/main")
    (root / "docs").mkdir()
    (root / "docs" / "gaps.yaml").write_text("gaps: []\n", encoding="utf-8")
    repo = ChumpRepo(root, origin)
    repo.commit("initial")
    return repo


def fake_spawner(tmp_path: Path) -> FakeSpawner:
    """The ``fake`` spawner writing into ``tmp_path / "fake-scratch"``."""
    from pytest_chump.agents.fake import FakeSpawner
    from pytest_chump.core import config_sources

    scratch = tmp_path / "fake-scratch"
    table = {"spawners": {"fake": {"scratch": str(scratch)}}}
    return FakeSpawner(config_sources.resolve(tmp_path, {}, {}, table))


def runner(repo: ChumpRepo, memory: MemorySink, config: pytest.Config) -> Callable[..., RunResult]:
    """The ``chump_run`` callable: the real loop on ``repo``'s backlog, ``memory`` among its
    sinks and the ``chump_*`` hooks of ``config``'s conftest files taking part."""
    from pytest_chump.selftest.bridge import bridged

    def run(
        spawner: Spawner | str = "fake",
        provider: PrProvider | str = "instant",
        sinks: Sequence[Sink] = (),
        **settings: object,
    ) -> RunResult:
        return _drive(repo, spawner, provider, [memory, *sinks], settings, bridged(config))

    return run


def _drive(
    repo: ChumpRepo,
    spawner: Spawner | str,
    provider: PrProvider | str,
    sinks: list[Sink],
    overrides: Mapping[str, object],
    plugins: list[object],
) -> RunResult:
    from pytest_chump.core import config_sources
    from pytest_chump.core.plugins import get_plugin_manager
    from pytest_chump.loop.app import App
    from pytest_chump.loop.orchestrator import Orchestrator
    from pytest_chump.loop.progress import Progress
    from pytest_chump.state.store import Store

    spawner_name = spawner if isinstance(spawner, str) else spawner.name
    provider_name = provider if isinstance(provider, str) else provider.name
    flags = {
        "spawner": spawner_name,
        "pr_provider": provider_name,
        "poll_interval": "50ms",
        "sinks": ",".join(s.name for s in sinks),
        "lessons": False,
        **overrides,
    }
    settings = config_sources.resolve(repo.root, flags, env={})
    app = App(settings, get_plugin_manager(extra=plugins, env={}))
    app.pm.hook.chump_configure(settings=settings)
    app._sinks = {s.name: s for s in sinks}
    registered = app.spawner_factory() if isinstance(spawner, str) else None

    def spawner_for(name: str) -> Spawner:
        if not isinstance(spawner, str) and name == spawner.name:
            return spawner
        return (registered or app.spawner_factory())(name)

    out = io.StringIO()
    with Store.for_repo(repo.root) as store:
        chosen = app.provider() if isinstance(provider, str) else provider
        orch = Orchestrator(app, store, spawner_for, chosen, Progress(out, out))
        orch.run()
    outcomes = {gap: outcome for gap, _, outcome in orch.finisher.rows}
    memory = next(s for s in sinks if s.name == "memory")
    reflections = list(getattr(memory, "reflections", []))
    return RunResult(outcomes, reflections, out.getvalue(), dict(orch.finisher.counts))
