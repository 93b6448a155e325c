"""The pytest plugin's ``--chump-<setting>`` options and ``chump_<setting>`` ini keys as plain
data, so that declaring them in every pytest run imports nothing (``core.config`` is imported
only when a setting is read or the self-test runs).

:data:`FLAGS` is generated from the settings declared in :mod:`pytest_chump.core.config`: after
changing one, run ``python -m pytest_chump.core.pytest_options``; ``tests/test_import_cost.py``
fails while the two disagree.

PYTEST_DONT_REWRITE (no asserts here: pytest need not rewrite this module).
"""

from __future__ import annotations

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
"""(setting name, help text ending in its default) of each setting that is a flag."""


def expected() -> tuple[tuple[str, str], ...]:
    """What :data:`FLAGS` should be, computed from the declared settings."""
    from pytest_chump.core import config

    return tuple(
        (f.name, f"{f.metadata['help']} (default {config.shown_default(f)})")
        for f in config.declared()
        if f.metadata["flag"]
    )


def render(flags: tuple[tuple[str, str], ...], width: int = 100) -> str:
    """The generated lines of :data:`FLAGS` (formatted as ``ruff format`` leaves them)."""
    lines = []
    for name, text in flags:
        one = f"    ({_literal(name)}, {_literal(text)}),"
        if len(one) <= width:
            lines.append(one)
            continue
        lines += ["    (", f"        {_literal(name)},"]
        lines += [f"        {piece}" for piece in _pieces(text, width - 8)]
        lines[-1] += ","
        lines.append("    ),")
    return "\n".join(lines) + "\n"


def _pieces(text: str, width: int) -> list[str]:
    """``text`` as implicitly concatenated string literals, each at most ``width`` long."""
    pieces: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and len(candidate) + 3 > width:  # quotes and the space kept at the end
            pieces.append(current + " ")
            current = word
        else:
            current = candidate
    pieces.append(current)
    return [_literal(p) for p in pieces]


def _literal(text: str) -> str:
    """``repr(text)``, in double quotes unless ``text`` holds one (as ``ruff format`` writes it)."""
    literal = repr(text)
    if literal.startswith("'") and '"' not in text:
        literal = f'"{literal[1:-1]}"'
    return literal


def main() -> None:
    """Rewrite the generated part of this file from the declared settings."""
    from pathlib import Path

    path = Path(__file__)
    head, rest = path.read_text(encoding="utf-8").split("    # generated: begin\n", 1)
    _, tail = rest.split("    # generated: end\n", 1)
    text = f"{head}    # generated: begin\n{render(expected())}    # generated: end\n{tail}"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
