"""The plugin manager: built-ins are plugins, entry-point group ``chump`` loads third parties."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

from pytest_chump import hookspecs
from pytest_chump.core.errors import PluginError
from pytest_chump.core.model import Gap
from pytest_chump.core.plugins import DEFAULT_PLUGINS, Registry, collect, get_plugin_manager
from pytest_chump.core.records import PickRequest
from tests.conftest import SYNTHETIC

PLUGIN_SOURCE = '''
from pytest_chump import hookimpl

@hookimpl
def chump_pick(gaps, request):
    """Replace the picker: always the last gap of the backlog."""
    return [gaps[-1]]

class DummySpawner:
    name = "dummy"
    def spawn(self, request):
        raise NotImplementedError

@hookimpl
def chump_register_spawners(register):
    register("dummy", lambda settings: DummySpawner())
'''

SPAWNER_ONLY_SOURCE = (
    "from pytest_chump import hookimpl\n"
    + PLUGIN_SOURCE[PLUGIN_SOURCE.index("class DummySpawner") :]
)
"""PLUGIN_SOURCE without its picker: only adds the ``dummy`` spawner."""

GAPS = (Gap("A-1", priority="P1", effort="s"), Gap("B-1", priority="P1", effort="s"))


def install_entry_point(root: Path, name: str, module: str, source: str) -> None:
    """Make a distribution visible on sys.path that declares ``[chump] name = module``."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[chump]\n{name} = {module}\n")


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_entry_point(tmp_path, "thirdparty", "chump_thirdparty_demo", PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def pick(pm: pluggy.PluginManager) -> list[str]:
    return [g.id for g in pm.hook.chump_pick(gaps=GAPS, request=PickRequest(slots=1, kind="any"))]


def test_builtins_are_registered_as_plugins() -> None:
    pm = get_plugin_manager(env={})
    for name in DEFAULT_PLUGINS:
        assert pm.has_plugin(name)
    assert pick(pm) == ["A-1"]


def test_entry_point_plugin_replaces_picker_and_adds_spawner(third_party: Path) -> None:
    pm = get_plugin_manager(env={})
    assert pm.has_plugin("thirdparty")
    assert pick(pm) == ["B-1"]
    assert "dummy" in collect(pm, "spawners").names()


def test_disable_plugins_blocks_entry_point(third_party: Path) -> None:
    pm = get_plugin_manager(env={"CHUMP_DISABLE_PLUGINS": "thirdparty"})
    assert not pm.has_plugin("thirdparty")
    assert pick(pm) == ["A-1"]


def test_load_plugins_is_an_allow_list(third_party: Path) -> None:
    assert not get_plugin_manager(env={"CHUMP_LOAD_PLUGINS": ""}).has_plugin("thirdparty")
    assert get_plugin_manager(env={"CHUMP_LOAD_PLUGINS": "thirdparty"}).has_plugin("thirdparty")


def test_broken_entry_point_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_entry_point(tmp_path, "broken", "chump_broken_demo", "raise ImportError('no numpy')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        PluginError, match=r"plugin 'broken' .* failed to load: ImportError: no numpy"
    ):
        get_plugin_manager(env={})


def test_conftest_style_object_overrides_builtin() -> None:
    class LastPicker:
        @staticmethod
        def chump_pick(gaps: tuple[Gap, ...], request: PickRequest) -> list[Gap]:
            return [gaps[-1]]

    pm = get_plugin_manager(extra=[LastPicker()], env={})
    assert pick(pm) == ["B-1"]


def test_registry_rejects_duplicates_and_lists_valid_names() -> None:
    reg: Registry[object] = Registry("spawner")
    reg.register("alpha", object)
    reg.register("beta", object)
    with pytest.raises(PluginError, match="spawner 'alpha' is registered twice"):
        reg.register("alpha", object)
    with pytest.raises(PluginError, match=r"unknown spawner 'gamma' \(valid: alpha, beta\)"):
        reg.factory("gamma")
    with pytest.raises(PluginError, match="invalid spawner name"):
        reg.register("Bad Name", object)


def test_every_hookspec_is_documented_and_typed() -> None:
    specs = [
        f for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("chump_")
    ]
    assert len(specs) >= 10
    for spec in specs:
        doc = inspect.getdoc(spec) or ""
        assert doc.startswith("Called"), spec.__name__
        sig = inspect.signature(spec)
        assert sig.return_annotation is not inspect.Signature.empty, spec.__name__
        for param in sig.parameters.values():
            assert param.annotation is not inspect.Parameter.empty, (spec.__name__, param.name)
            assert f":param {param.name}:" in doc, (spec.__name__, param.name)


def cli_dispatch(dist: Path, root: Path, spawner: str) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_chump.cli dispatch`` (dry run) with ``dist`` on PYTHONPATH."""
    path = os.pathsep.join(filter(None, [str(dist), os.environ.get("PYTHONPATH", "")]))
    argv = ["dispatch", "--spawner", spawner, "--backlog", str(SYNTHETIC)]
    return subprocess.run(
        [sys.executable, "-m", "pytest_chump.cli", *argv, "--repo-root", str(root)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_entry_point_spawner_is_selectable_through_the_real_cli(tmp_path: Path) -> None:
    dist, root = tmp_path / "dist", tmp_path / "root"
    dist.mkdir()
    root.mkdir()
    install_entry_point(dist, "thirdparty", "chump_thirdparty_cli_demo", SPAWNER_ONLY_SOURCE)

    proc = cli_dispatch(dist, root, "dummy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    would = [ln for ln in proc.stdout.splitlines() if ln.startswith("WOULD DISPATCH: ")]
    assert len(would) == 2, proc.stdout
    assert not (root / ".chump" / "worktrees").exists()  # a dry run creates no worktree

    proc = cli_dispatch(dist, root, "nope")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "WOULD DISPATCH" not in proc.stdout
    (line,) = proc.stderr.splitlines()
    assert "unknown spawner 'nope' (valid: " in line
    valid = line.split("(valid: ", 1)[1].rstrip(")").split(", ")
    assert "dummy" in valid


def test_entry_point_picker_and_spawner_both_apply_through_the_real_cli(tmp_path: Path) -> None:
    dist, root = tmp_path / "dist", tmp_path / "root"
    dist.mkdir()
    root.mkdir()
    install_entry_point(dist, "thirdparty", "chump_thirdparty_cli_full", PLUGIN_SOURCE)
    proc = cli_dispatch(dist, root, "dummy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    would = [ln.split()[2] for ln in proc.stdout.splitlines() if ln.startswith("WOULD DISPATCH")]
    assert would == ["SYNTH-004"]  # the plugin's chump_pick: always the last gap
