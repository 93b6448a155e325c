"""The pytest plugin is loaded into every pytest run of every user: a run that does not use chump
must pay almost nothing. These checks are deterministic (which modules get imported, whether the
option table matches the settings), so the cheapness cannot regress silently; the time it costs
is measured by ``benchmarks/bench_selftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_chump import pytest_plugin
from pytest_chump.core import config, pytest_options

HEAVY = ("yaml", "git", "sqlite3", "_sqlite3", "tomllib", "pytest_chump.backlog")
ENTRY_POINT_IMPORTS = {"pytest_chump", "pytest_chump._deprecated", "pytest_chump.pytest_plugin"}
"""Every module ``import pytest_chump.pytest_plugin`` may add to what pytest imports itself."""
RUN_IMPORTS = {*ENTRY_POINT_IMPORTS, "pytest_chump.selftest", "pytest_chump.selftest.fixtures"}
"""Every module a pytest run that does not use chump may import beyond one with ``-p no:chump``."""
PYTEST_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")


def _run(code: str, cwd: Path | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in PYTEST_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd, env=env
    )
    return proc.stdout.strip().splitlines()


def test_plugin_import_is_cheap() -> None:
    code = (
        "import sys, pytest_chump.pytest_plugin\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    assert _run(code) == []


def test_the_entry_point_imports_nothing_but_its_package() -> None:
    code = (
        "import sys, pytest\n"
        "before = set(sys.modules)\n"
        "import pytest_chump.pytest_plugin\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))\n"
    )
    assert set(_run(code)) == ENTRY_POINT_IMPORTS


def test_a_pytest_run_not_using_chump_imports_no_more_of_it(tmp_path: Path) -> None:
    (tmp_path / "test_t.py").write_text("def test_t():\n    assert True\n")

    def imported(*args: str) -> set[str]:
        code = (
            "import sys, pytest\n"
            f"assert pytest.main(['--co', '-q', '-p', 'no:cacheprovider', *{args!r}]) == 0\n"
            "print('MODULES', *sorted(sys.modules))\n"
        )
        line = next(ln for ln in _run(code, tmp_path) if ln.startswith("MODULES "))
        return set(line.split()[1:])

    with_chump, without = imported(), imported("-p", "no:chump")
    assert "pytest_chump.pytest_plugin" in with_chump  # the plugin was active
    assert with_chump - without == RUN_IMPORTS


def test_importtime_shows_no_heavy_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest_chump.pytest_plugin"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert not imported & {"yaml", "git", "sqlite3", "pytest_chump.core.config"}


def test_the_option_table_matches_the_settings() -> None:
    assert pytest_options.expected() == pytest_plugin.FLAGS, (
        "the option table in pytest_chump/pytest_plugin.py is out of date: "
        "run `python -m pytest_chump.core.pytest_options`"
    )


def test_the_option_table_is_the_generated_text() -> None:
    text = pytest_options.plugin_path().read_text(encoding="utf-8")
    assert pytest_options.regenerated(text) == text


def test_help_lists_every_setting_as_option_and_ini_key(tmp_path: Path) -> None:
    code = "import pytest; pytest.main(['--help', '-p', 'no:cacheprovider'])"
    text = "\n".join(_run(code, tmp_path))
    for f in config.declared():
        if f.metadata["flag"]:
            assert f"--chump-{f.name.replace('_', '-')}=" in text, f.name
            assert f"chump_{f.name} (" in text, f.name


def test_the_generated_table_keeps_to_the_line_length() -> None:
    flags = (("x", "word " * 60), ("y", "short"), ("quoted", 'a "b" c'), ("it", "it's"))
    text = pytest_options.render(flags)
    assert max(len(line) for line in text.splitlines()) <= 100
    namespace: dict[str, object] = {}
    exec(f"FLAGS = (\n{text})", namespace)
    assert namespace["FLAGS"] == flags


def test_the_finder_of_old_module_paths_leaves_before_shutdown() -> None:
    code = (
        "import atexit, sys, pytest_chump\n"
        "from pytest_chump._deprecated import _Finder\n"
        "ours = lambda: any(isinstance(f, _Finder) for f in sys.meta_path)\n"
        "print(ours())\n"
        "atexit._run_exitfuncs()\n"
        "print(ours())\n"
    )
    assert _run(code) == ["True", "False"]
