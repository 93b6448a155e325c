"""pytest entry point (``pytest11``): chump's options and ini keys, ``--chump-self-test``, and
the fixtures for plugin authors.

Loaded into every pytest run of every user, so a run that does not use chump pays almost
nothing: this module imports nothing of chump's (its options come from the literal table
``FLAGS``) and the fixtures module it registers imports nothing heavy; the settings machinery,
yaml, git and sqlite are imported only by code that runs when chump is actually used
(``tests/test_import_cost.py``).
PYTEST_DONT_REWRITE (no asserts here: pytest need not rewrite this module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_chump.core.config import Settings

SETTINGS_KEY = pytest.StashKey["Settings"]()

FLAGS: tuple[tuple[str, str], ...] = (
    # generated: begin
    (
        "backlog",
        "backlog file or directory of gap files, relative to the repo root (default "
        "docs/gaps.yaml)",
    ),
    (
        "backlog_source",
        "where gaps come from: yaml (the backlog file or directory), github (issues) or a plugin's "
        "(default yaml)",
    ),
    (
        "strict",
        "refuse the whole backlog when any gap has a problem (default: quarantine those gaps) "
        "(default False)",
    ),
    ("max_parallel", "agents running at once (default 2)"),
    (
        "dispatch_workers",
        "threads that create and remove worktrees off the loop (0: on the loop thread) (default 2)",
    ),
    ("spawner", "spawner (agent backend) to run gaps with (default claude)"),
    ("pr_provider", "pull-request provider to watch branches with (default github)"),
    ("base_ref", "git ref new branches start from (default origin/main)"),
    ("branch_prefix", "prefix of dispatch branches (default chump/)"),
    (
        "worktree_root",
        "where worktrees are created, relative to the repo root (default .chump/worktrees)",
    ),
    (
        "worktree_include",
        "globs of untracked files (e.g. .env) copied into each new worktree (default none)",
    ),
    (
        "worktree_pool",
        "finished worktrees kept warm (parked, at most this many) and reused by later dispatches "
        "at their new branch, ignored build caches kept (0: off) (default 0)",
    ),
    (
        "pool_clean",
        "how clean a reused pooled worktree is: tracked (exactly its commit; git-ignored build "
        "caches stay) or all (ignored files removed too) (default tracked)",
    ),
    (
        "picker_order",
        "order among gaps of equal priority: critical-path, declared or effort (default "
        "critical-path)",
    ),
    ("kind", "which gap kinds to dispatch: user, system or any (default user)"),
    (
        "bias_threshold",
        "share of recent done gaps in INFRA above which non-P0 INFRA gaps go last (default 0.8)",
    ),
    ("bias_window", "how many recent done gaps the INFRA bias looks at (default 10)"),
    ("deadline_scale", "multiplies every deadline (simulations use tiny values) (default 1.0)"),
    ("kill_grace", "seconds between SIGTERM and SIGKILL of an agent's process group (default 30s)"),
    ("poll_interval", "how often the PR provider is polled (default 30s)"),
    ("silence_alert", "an agent silent this long is flagged (not killed) (default 5m)"),
    (
        "lease_ttl",
        "an orchestrator silent this long (stopped, hung) loses its leases and agents (default "
        "60s)",
    ),
    (
        "retries",
        "new attempts, with what failed, after failing checks, tests, a merge conflict or "
        "requested changes; after the last the gap needs a human (`chump retry ID`) (default 2)",
    ),
    (
        "retry_transient",
        "new attempts after a rate limit, an overloaded API or no network, with backoff (default "
        "3)",
    ),
    (
        "retry_backoff",
        "wait before the first transient retry; doubled for each next one (default 10s)",
    ),
    ("retry_backoff_max", "the longest wait between transient retries (default 5m)"),
    (
        "budget_usd",
        "USD a run may spend (as agents report it); reached, nothing new starts (0: no budget) "
        "(default none)",
    ),
    (
        "daily_budget_usd",
        "USD the repository may spend per UTC day, every run together (0: no budget) (default "
        "none)",
    ),
    (
        "on_budget",
        "when a budget is reached: finish (let running agents end) or stop (stop them now) "
        "(default finish)",
    ),
    (
        "log_max_bytes",
        "disk an agent's log and stderr log may each take; the newest output is kept (default "
        "64MiB)",
    ),
    (
        "exit_grace",
        "after an agent exits 0, how long to wait for its PR before calling it stalled (default "
        "60s)",
    ),
    ("bot_name", "git author and committer name of agents' commits (default chump-bot)"),
    (
        "bot_email",
        "git author and committer email of agents (default chump-bot@users.noreply.localhost)",
    ),
    ("sinks", "reflection sinks to write to (comma-separated) (default sqlite)"),
    ("gh_bin", "the GitHub CLI the github provider runs (default gh)"),
    (
        "routing_strategy",
        "how arms are chosen: thompson (learned) or cascade (first candidate) (default thompson)",
    ),
    ("routing_seed", "seed of the Thompson sampler (unset: random) (default random)"),
    ("lessons", "add lessons from earlier dispatches to prompts (default True)"),
    (
        "rules_file",
        "the repository's rules for agents, put into every prompt when the file exists (default "
        "docs/process/CHUMP_DISPATCH_RULES.md)",
    ),
    (
        "prompt_template",
        "a file whose text, {placeholders} filled in, is every agent's prompt (default built-in)",
    ),
    # generated: end
)
"""(name, help ending in the default) of each setting that is a flag: generated from
:mod:`pytest_chump.core.config` by ``python -m pytest_chump.core.pytest_options``."""


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
