"""pytest entry point (``pytest11``): chump's options and ini keys, ``--chump-self-test``, and
the fixtures for plugin authors.

Loaded into every pytest run of every user, so a run that does not use chump pays almost
nothing: the options are declared from the plain table in :mod:`pytest_chump.core.pytest_options`
and the fixtures module imports nothing heavy; the settings machinery, yaml, git and sqlite are
only imported by code that runs when chump is actually used (``tests/test_import_cost.py``).
PYTEST_DONT_REWRITE (no asserts here: pytest need not rewrite this module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_chump.core.pytest_options import FLAGS

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings

SETTINGS_KEY = pytest.StashKey["Settings"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chump", "chump: self-dispatching orchestrator for coding agents")
    group.addoption(
        "--chump-self-test",
        action="store_true",
        default=False,
        help="run chump's self-test (synthetic backlog, fake agents) and exit; "
        "the repository's own tests are not collected",
    )
    group.addoption(
        "--chump-self-test-backlog",
        metavar="PATH",
        default=None,
        help="run the self-test on this backlog instead of the bundled synthetic one",
    )
    group.addoption(
        "--chump-self-test-real",
        action="store_true",
        default=False,
        help="run the self-test through a temporary git repository with real worktrees, "
        "real agent processes and the git provider",
    )
    for name, text in FLAGS:
        flag = name.replace("_", "-")
        group.addoption(f"--chump-{flag}", dest=f"chump_{name}", default=None, help=text)
        parser.addini(f"chump_{name}", help=text, default=None)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--chump-self-test``: run it and exit with its status before any collection."""
    real = config.getoption("chump_self_test_real")
    if not (config.getoption("chump_self_test") or real):
        return None
    from pathlib import Path

    from pytest_chump.core.errors import ChumpError
    from pytest_chump.selftest.bridge import bridged

    backlog = config.getoption("chump_self_test_backlog")
    try:
        settings = chump_settings(config)
        if real:
            from pytest_chump.selftest import real as selftest
        else:
            from pytest_chump.selftest import inprocess as selftest  # type: ignore[no-redef]
        report = selftest.run(
            Path(backlog) if backlog else None, settings.max_parallel, plugins=bridged(config)
        )
    except ChumpError as exc:
        print("\n".join(exc.messages()))
        return int(pytest.ExitCode.USAGE_ERROR)
    print("\n".join(report.lines()), flush=True)
    return int(pytest.ExitCode.OK if report.passed else pytest.ExitCode.TESTS_FAILED)


def chump_settings(config: pytest.Config) -> Settings:
    """The settings of this pytest run, resolved once: CLI > env > ini > pyproject > default."""
    if SETTINGS_KEY not in config.stash:
        import os
        from pathlib import Path

        from pytest_chump.core import config_sources
        from pytest_chump.core.run import find_repo_root

        flags = {name: config.getoption(f"chump_{name}") for name, _ in FLAGS}
        root = find_repo_root(Path(str(config.rootpath)))
        table = dict(config_sources.read_pyproject(root))
        for name, _ in FLAGS:
            value = config.getini(f"chump_{name}")
            if value not in (None, "", []):
                table[name] = value
        config.stash[SETTINGS_KEY] = config_sources.resolve(root, flags, os.environ, table)
    return config.stash[SETTINGS_KEY]


def pytest_configure(config: pytest.Config) -> None:
    from pytest_chump.selftest import fixtures

    if not config.pluginmanager.has_plugin("chump-testing"):
        config.pluginmanager.register(fixtures, "chump-testing")


def __getattr__(name: str) -> object:
    """``bridged`` lived here in 0.1; it is ``pytest_chump.selftest.bridge.bridged`` now."""
    if name == "bridged":
        import warnings

        from pytest_chump.selftest.bridge import bridged

        message = "pytest_chump.pytest_plugin.bridged is deprecated (it goes away in 0.3)"
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return bridged
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
