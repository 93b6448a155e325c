"""Every setting chump has, declared once: a field of :class:`Settings` with its help text,
parser and environment names.

The CLI options, the pytest ini keys, the pyproject reader and the README table are all
derived from these declarations; where values come from, and in which precedence, is
:mod:`~pytest_chump.core.config_sources`.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_chump.core import config_values as v
from pytest_chump.core.model import KIND_FILTERS, PICKER_ORDERS

MINUTE = 60.0
DEFAULT_DEADLINES = {
    "xs": 10 * MINUTE,
    "s": 20 * MINUTE,
    "m": 60 * MINUTE,
    "l": 180 * MINUTE,
    "xl": 360 * MINUTE,
    "default": 60 * MINUTE,
}


def setting(
    default: object,
    help: str,
    parse: v.Parser,
    env: tuple[str, ...] = (),
    flag: bool = True,
    shown: str | None = None,
) -> Any:
    """Declare one setting; ``env`` defaults to ``CHUMP_<NAME>``; tables are not flags.

    ``shown`` is how the default is written in help and docs when ``str(default)`` is not it.
    """
    meta = {"help": help, "parse": parse, "env": env, "flag": flag, "shown": shown}
    if isinstance(default, dict | tuple):
        frozen = default
        return field(default_factory=lambda: copy.deepcopy(frozen), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Everything chump is configured with, after precedence was applied."""

    repo_root: Path = field(default=Path("."), metadata={"help": "", "internal": True})
    backlog: str = setting(
        "docs/gaps.yaml",
        "backlog file or directory of gap files, relative to the repo root",
        v.text,
    )
    backlog_source: str = setting(
        "yaml",
        "where gaps come from: yaml (the backlog file or directory), github (issues) or a plugin's",
        v.text,
    )
    backlog_sources: dict[str, dict[str, Any]] = setting(
        {},
        "per-source options, e.g. [tool.chump.backlog_sources.github] label",
        v.tables,
        flag=False,
        shown="{}",
    )
    strict: bool = setting(
        False,
        "refuse the whole backlog when any gap has a problem (default: quarantine those gaps)",
        v.boolean,
    )
    status_aliases: dict[str, str] = setting(
        {},
        "a team's own statuses mapped onto chump's, e.g. shipped = \"done\"",
        v.status_aliases,
        flag=False,
        shown="{}",
    )
    max_parallel: int = setting(
        2,
        "agents running at once",
        v.integer(0),
        env=("CHUMP_MAX_PARALLEL", "CHUMP_DISPATCH_CAPACITY"),
    )
    dispatch_workers: int = setting(
        2,
        "threads that create and remove worktrees off the loop (0: on the loop thread)",
        v.integer(0),
    )
    spawner: str = setting("claude", "spawner (agent backend) to run gaps with", v.text)
    pr_provider: str = setting("github", "pull-request provider to watch branches with", v.text)
    base_ref: str = setting("origin/main", "git ref new branches start from", v.text)
    branch_prefix: str = setting("chump/", "prefix of dispatch branches", v.branch_prefix)
    worktree_root: str = setting(
        ".chump/worktrees",
        "where worktrees are created, relative to the repo root",
        v.relative_path,
    )
    worktree: dict[str, Any] = setting(
        {},
        "worktree set-up: after_create, before_run, after_run, before_remove commands, timeout",
        v.table,
        flag=False,
        shown="none",
    )
    worktree_include: tuple[str, ...] = setting(
        (),
        "globs of untracked files (e.g. .env) copied into each new worktree",
        v.names,
        shown="none",
    )
    worktree_pool: int = setting(
        0,
        "finished worktrees kept warm (parked, at most this many) and reused by later "
        "dispatches at their new branch, ignored build caches kept (0: off)",
        v.integer(0),
    )
    pool_clean: str = setting(
        "tracked",
        "how clean a reused pooled worktree is: tracked (exactly its commit; git-ignored build "
        "caches stay) or all (ignored files removed too)",
        v.choice("tracked", "all"),
    )
    picker_order: str = setting(
        "critical-path",
        "order among gaps of equal priority: critical-path, declared or effort",
        v.choice(*PICKER_ORDERS),
    )
    kind: str = setting(
        "user", "which gap kinds to dispatch: user, system or any", v.choice(*KIND_FILTERS)
    )
    bias_threshold: float = setting(
        0.8,
        "share of recent done gaps in INFRA above which non-P0 INFRA gaps go last",
        v.number(0.0, 1.0),
        env=("CHUMP_PICKER_BIAS_THRESHOLD",),
    )
    bias_window: int = setting(
        10,
        "how many recent done gaps the INFRA bias looks at",
        v.integer(1),
        env=("CHUMP_PICKER_BIAS_WINDOW",),
    )

    deadlines: dict[str, float] = setting(
        DEFAULT_DEADLINES,
        "soft deadline per effort; at 2x a still-running agent is stopped",
        v.per_effort_durations(DEFAULT_DEADLINES),
        flag=False,
        shown="xs 10m, s 20m, m 60m, l 180m, xl 360m, other 60m",
    )
    deadline_scale: float = setting(
        1.0, "multiplies every deadline (simulations use tiny values)", v.number(0.0)
    )
    kill_grace: float = setting(
        30.0,
        "seconds between SIGTERM and SIGKILL of an agent's process group",
        v.duration,
        shown="30s",
    )
    poll_interval: float = setting(
        30.0, "how often the PR provider is polled", v.duration, shown="30s"
    )
    silence_alert: float = setting(
        300.0, "an agent silent this long is flagged (not killed)", v.duration, shown="5m"
    )
    lease_ttl: float = setting(
        60.0,
        "an orchestrator silent this long (stopped, hung) loses its leases and agents",
        v.duration,
        shown="60s",
    )
    retries: int = setting(
        2,
        "new attempts, with what failed, after failing checks, tests, a merge conflict or "
        "requested changes; after the last the gap needs a human (`chump retry ID`)",
        v.integer(0),
    )
    retry_transient: int = setting(
        3,
        "new attempts after a rate limit, an overloaded API or no network, with backoff",
        v.integer(0),
    )
    retry_backoff: float = setting(
        10.0,
        "wait before the first transient retry; doubled for each next one",
        v.positive_duration,
        shown="10s",
    )
    retry_backoff_max: float = setting(
        300.0, "the longest wait between transient retries", v.positive_duration, shown="5m"
    )
    budget_usd: float = setting(
        0.0,
        "USD a run may spend (as agents report it); reached, nothing new starts (0: no budget)",
        v.number(0.0),
        shown="none",
    )
    daily_budget_usd: float = setting(
        0.0,
        "USD the repository may spend per UTC day, every run together (0: no budget)",
        v.number(0.0),
        shown="none",
    )
    on_budget: str = setting(
        "finish",
        "when a budget is reached: finish (let running agents end) or stop (stop them now)",
        v.choice("finish", "stop"),
    )
    notify: dict[str, Any] = setting(
        {},
        "notifications: command (argv, the event as JSON on stdin), webhook (URL, POSTed JSON), "
        "desktop (notify-send), events (which; default all)",
        v.table,
        flag=False,
        shown="off",
    )
    log_max_bytes: int = setting(
        64 * 1024 * 1024,
        "disk an agent's log and stderr log may each take; the newest output is kept",
        v.size,
        shown="64MiB",
    )
    exit_grace: float = setting(
        60.0,
        "after an agent exits 0, how long to wait for its PR before calling it stalled",
        v.duration,
        shown="60s",
    )
    bot_name: str = setting("chump-bot", "git author and committer name of agents' commits", v.text)
    bot_email: str = setting(
        "chump-bot@users.noreply.localhost", "git author and committer email of agents", v.text
    )
    sinks: tuple[str, ...] = setting(
        ("sqlite",), "reflection sinks to write to (comma-separated)", v.names, shown="sqlite"
    )
    gh_bin: str = setting("gh", "the GitHub CLI the github provider runs", v.text)
    merge_gate: dict[str, Any] = setting(
        {},
        "local merge gate of the git provider: command, timeout, merge (ff or merge)",
        v.table,
        flag=False,
        shown="off",
    )
    routing: dict[str, Any] = setting(
        {},
        "routing table: ordered candidate arms per priority / effort / id prefix",
        v.table,
        flag=False,
        shown="built-in",
    )
    routing_strategy: str = setting(
        "thompson",
        "how arms are chosen: thompson (learned) or cascade (first candidate)",
        v.choice("thompson", "cascade"),
    )
    routing_seed: int | None = setting(
        None, "seed of the Thompson sampler (unset: random)", v.integer(0), shown="random"
    )
    lessons: bool = setting(True, "add lessons from earlier dispatches to prompts", v.boolean)
    rules_file: str = setting(
        "docs/process/CHUMP_DISPATCH_RULES.md",
        "the repository's rules for agents, put into every prompt when the file exists",
        v.optional_relative_path,
    )
    prompt_template: str = setting(
        "",
        "a file whose text, {placeholders} filled in, is every agent's prompt",
        v.optional_relative_path,
        shown="built-in",
    )
    hooks: bool = setting(
        True, "let the git hooks run (false: they do nothing)", v.boolean, flag=False
    )
    spawners: dict[str, dict[str, Any]] = setting(
        {},
        "per-spawner options; a table with a 'command' list defines a new spawner",
        v.tables,
        flag=False,
        shown="{}",
    )

    @property
    def backlog_path(self) -> Path:
        return self.repo_root / self.backlog

    @property
    def worktree_dir(self) -> Path:
        return self.repo_root / self.worktree_root

    @property
    def state_dir(self) -> Path:
        return self.repo_root / ".chump"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def bot_identity(self) -> dict[str, str]:
        """git's author and committer variables for commits chump or its agents make."""
        return {
            f"GIT_{role}_{part.upper()}": value
            for role in ("AUTHOR", "COMMITTER")
            for part, value in (("name", self.bot_name), ("email", self.bot_email))
        }

    def soft_deadline(self, effort: str) -> float:
        """Seconds after which an agent with no PR counts as stalled (scaled)."""
        table = self.deadlines
        return table.get(effort, table["default"]) * self.deadline_scale

    def spawner_options(self, name: str) -> dict[str, Any]:
        return dict(self.spawners.get(name, {}))

    def configured_secrets(self) -> list[str]:
        """Secret values the configuration hands agents (spawner ``env`` tables), so they are
        redacted like the orchestrator's own, whichever process reads the output later."""
        from pytest_chump.core.redact import secret_values

        found: set[str] = set()
        for table in self.spawners.values():
            env = table.get("env")
            if isinstance(env, dict):
                found.update(secret_values({str(k): str(v) for k, v in env.items()}))
        return sorted(found, key=len, reverse=True)

    def source_options(self, name: str) -> dict[str, Any]:
        return dict(self.backlog_sources.get(name, {}))


def declared() -> list[dataclasses.Field[Any]]:
    """The user-facing settings, in declaration order."""
    return [f for f in dataclasses.fields(Settings) if not f.metadata.get("internal")]


def env_names(f: dataclasses.Field[Any]) -> tuple[str, ...]:
    """Environment variables of ``f`` (none for tables, which live in pyproject.toml only)."""
    if not f.metadata["flag"]:
        return ()
    return tuple(f.metadata["env"]) or (f"CHUMP_{f.name.upper()}",)


def default_of(f: dataclasses.Field[Any]) -> Any:
    factory = f.default_factory
    return factory() if factory is not dataclasses.MISSING else f.default


def shown_default(f: dataclasses.Field[Any]) -> str:
    """How the default of ``f`` is written in help texts and the README."""
    shown = f.metadata.get("shown")
    return str(shown if shown is not None else default_of(f))


def flag_name(f: dataclasses.Field[Any]) -> str:
    return "--" + f.name.replace("_", "-")
