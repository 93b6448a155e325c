"""The public API: what plugin authors import, from ``pytest_chump`` only; the old deep paths
still work for one release, each with a DeprecationWarning pointing at the importing line."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
import sys
import warnings

import pytest

import pytest_chump
from pytest_chump import _deprecated
from pytest_chump.core.plugins import get_plugin_manager
from tests.conftest import ROOT

EAGER = {"PROJECT_NAME", "__version__", "hookimpl"}


@pytest.mark.parametrize("name", pytest_chump.__all__)
def test_every_public_name_imports_from_the_package(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from pytest_chump import {name}", namespace)
    assert namespace[name] is getattr(pytest_chump, name)
    assert name in dir(pytest_chump)


def test_all_is_the_table_of_lazy_names_plus_the_marker() -> None:
    assert set(pytest_chump.__all__) == EAGER | set(pytest_chump._PUBLIC)
    assert len(pytest_chump.__all__) == len(set(pytest_chump.__all__))


@pytest.mark.parametrize("name", sorted(set(pytest_chump.__all__) - {"__version__"}))
def test_every_public_name_is_documented_in_the_package_docstring(name: str) -> None:
    assert f"``{name}``" in (pytest_chump.__doc__ or ""), name


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Orchestrator'"):
        pytest_chump.Orchestrator  # noqa: B018
    with pytest.raises(ImportError):
        exec("from pytest_chump import Orchestrator", {})


def test_importing_the_package_loads_no_public_module_until_used() -> None:
    code = (
        "import sys, pytest_chump\n"
        "homes = set(pytest_chump._PUBLIC.values())\n"
        "print(','.join(sorted(m for m in homes if m in sys.modules)))\n"
        "pytest_chump.Gap\n"
        "print('pytest_chump.core.model' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split("\n")[:2] == ["", "True"]


def test_readme_examples_import_only_the_public_api() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = "\n".join(re.findall(r"```python\n(.*?)```", readme, re.S))
    imports = re.findall(r"^\s*(?:from|import) (pytest_chump\S*)", code, re.M)
    assert imports, "the README shows no plugin code"
    assert set(imports) == {"pytest_chump"}, imports


# --- the old deep import paths -----------------------------------------------------------


def _fresh_import(name: str) -> tuple[object, list[warnings.WarningMessage]]:
    """Import ``name`` as if for the first time; the module and the warnings it raised."""
    parent, _, leaf = name.rpartition(".")
    saved = {k: v for k, v in sys.modules.items() if k == name or k.startswith(name + ".")}
    for key in saved:
        del sys.modules[key]
    had = getattr(sys.modules[parent], leaf, None) if parent in sys.modules else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            __import__(name)  # as an import statement does: no importlib frame in between
            module = sys.modules[name]
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
        sys.modules.update(saved)
        if had is not None:
            setattr(sys.modules[parent], leaf, had)
    return module, caught


@pytest.mark.parametrize("old", sorted(_deprecated.MOVED))
def test_old_path_imports_with_a_deprecation_warning(old: str) -> None:
    module, caught = _fresh_import(f"pytest_chump.{old}")
    ours = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert f"pytest_chump.{old} is deprecated" in str(ours[0].message)
    assert ours[0].filename == __file__  # it points at the import, not at chump's internals
    targets = _deprecated.MOVED[old]
    if len(targets) == 1:
        assert module is importlib.import_module(f"pytest_chump.{targets[0]}")


@pytest.mark.parametrize(
    ("old", "names"),
    [
        ("contracts", ("Outcome", "Dispatch", "Spawner", "Reflection", "PrStatus", "Register")),
        ("runner", ("start", "ProcessHandle", "agent_env", "check_depth", "stderr_log", "MARK")),
        ("adopted", ("AdoptedHandle", "adopt_orphans", "TAIL_LINES")),
        ("reflection", ("build", "directive", "exported", "from_dict", "outcome_class")),
        ("causes", ("classify", "CAUSES", "SUCCESS_OUTCOMES")),
        ("store", ("Store", "DispatchRow", "DB_NAME", "reflection_from_json")),
        ("orchestrator", ("Orchestrator", "Clock")),
    ],
)
def test_split_modules_still_offer_every_old_name(old: str, names: tuple[str, ...]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(f"pytest_chump.{old}")
    for name in names:
        assert getattr(module, name) is not None, name
        assert name in dir(module)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_old_from_imports_work() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pytest_chump.reflection import from_dict
        from pytest_chump.runner import start
        from pytest_chump.spawners.claude import ClaudeSpawner
    from pytest_chump.agents.claude import ClaudeSpawner as new
    from pytest_chump.core.records import reflection_from_dict

    assert (from_dict, start, ClaudeSpawner) == (reflection_from_dict, pytest_chump.start, new)


def test_old_builtin_plugin_names_still_disable_plugins() -> None:
    with pytest.warns(DeprecationWarning, match="plugin name 'pytest_chump.builtins.router'"):
        pm = get_plugin_manager(env={"CHUMP_DISABLE_PLUGINS": "pytest_chump.builtins.router"})
    assert pm.is_blocked("pytest_chump.learn.plugin")
    assert not pm.has_plugin("pytest_chump.learn.plugin")


def test_an_unknown_old_looking_name_is_still_not_found() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pytest_chump.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pytest_chump.spawners.no_such_spawner")


OLD_API = json.loads((ROOT / "tests" / "api_0_1.json").read_text())
"""Every module of 0.1 and the names it defined (read off the 0.1 sources once)."""
GONE = {
    ("pytest_chump.commands.validate", "validate_at"): "the linter is cli.validate.check now",
}


@pytest.mark.parametrize("module", sorted(OLD_API))
def test_every_name_a_module_of_0_1_defined_still_resolves(module: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        found = importlib.import_module(module)
        missing = [
            name
            for name in OLD_API[module]
            if (module, name) not in GONE and not hasattr(found, name)
        ]
    assert missing == []


def test_an_old_path_leaves_the_new_module_its_own_spec() -> None:
    _fresh_import("pytest_chump.model")
    from pytest_chump.core import model

    assert model.__spec__ is not None
    assert model.__spec__.name == "pytest_chump.core.model"
    assert importlib.util.find_spec("pytest_chump.core.model").name == "pytest_chump.core.model"


def test_the_old_data_package_still_finds_the_synthetic_backlog() -> None:
    from importlib import resources

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        found = resources.files("pytest_chump.fixtures").joinpath("synthetic-backlog.yaml")
    assert found.is_file()


def test_bridged_moved_with_a_warning() -> None:
    import pytest_chump.pytest_plugin as plugin
    from pytest_chump.selftest.bridge import bridged

    with pytest.warns(DeprecationWarning, match="pytest_plugin.bridged is deprecated"):
        assert plugin.bridged is bridged
