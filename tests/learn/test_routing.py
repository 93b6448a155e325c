"""Routing: table parsing and validation, candidates, stored stats, Thompson, the built-in hook."""

from __future__ import annotations

import random
import sqlite3
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_chump.core.config import Settings
from pytest_chump.core.errors import UsageError
from pytest_chump.core.model import Gap
from pytest_chump.core.plugins import get_plugin_manager
from pytest_chump.core.records import Arm, ArmStats
from pytest_chump.learn import plugin as builtin_router
from pytest_chump.learn.routing import (
    arm_stats,
    candidates,
    cascade,
    choose_arm,
    load_table,
    overall_stats,
    posterior_mean,
    thompson,
)
from pytest_chump.loop.app import App
from pytest_chump.state.store import Store

TABLE: dict[str, Any] = {
    "rules": [
        {
            "match": {"priority": ["P0", "P1"], "effort": ["l", "xl"]},
            "arms": [{"spawner": "claude", "model": "opus"}, {"spawner": "codex"}],
        },
        {"match": {"prefix": "INFRA-"}, "arms": [{"spawner": "codex"}]},
    ],
    "default": [{"spawner": "aider"}, {"spawner": "claude"}],
}
OPUS, CODEX, CLAUDE = Arm("claude", "opus"), Arm("codex"), Arm("claude")


def settings(tmp_path: Path, routing: dict[str, Any] | None = None, **kw: Any) -> Settings:
    return Settings(repo_root=tmp_path, routing=routing or {}, **kw)


def add_outcome(
    conn: sqlite3.Connection, backend: str, outcome: str, task_class: str = "infra", model: str = ""
) -> None:
    conn.execute(
        "INSERT INTO routing_outcomes(task_class, backend, model, outcome, created_at) "
        "VALUES (?,?,?,?,0)",
        (task_class, backend, model, outcome),
    )


# --- the table ----------------------------------------------------------------------


def test_first_matching_rule_gives_candidates_in_order(tmp_path: Path) -> None:
    table = load_table(settings(tmp_path, TABLE))
    assert candidates(table, Gap("A-1", priority="P1", effort="l")) == [OPUS, CODEX]
    assert candidates(table, Gap("INFRA-2", priority="P0", effort="xl")) == [OPUS, CODEX]
    assert candidates(table, Gap("INFRA-2", priority="P2", effort="s")) == [CODEX]
    assert candidates(table, Gap("infra-2", priority="P2")) == [Arm("aider"), CLAUDE]


def test_without_a_table_the_configured_spawner_is_the_only_arm(tmp_path: Path) -> None:
    table = load_table(settings(tmp_path, spawner="codex"))
    assert candidates(table, Gap("A-1")) == [CODEX]
    rules_only = {"rules": [{"match": {"effort": "xs"}, "arms": [{"spawner": "aider"}]}]}
    table = load_table(settings(tmp_path, rules_only, spawner="codex"))
    assert candidates(table, Gap("A-1", effort="xs")) == [Arm("aider")]
    assert candidates(table, Gap("A-1", effort="s")) == [CODEX]


def test_yaml_table_is_used_only_when_pyproject_has_none(tmp_path: Path) -> None:
    (tmp_path / ".chump").mkdir()
    (tmp_path / ".chump" / "routing.yaml").write_text("default:\n  - spawner: codex\n")
    assert candidates(load_table(settings(tmp_path)), Gap("A-1")) == [CODEX]
    assert candidates(load_table(settings(tmp_path, TABLE)), Gap("A-1")) == [Arm("aider"), CLAUDE]


@pytest.mark.parametrize(
    ("table", "where", "message"),
    [
        ({"rule": []}, "rule", "unknown key (valid: rules, default)"),
        ({"rules": {}}, "rules", "must be a list, got dict"),
        ({"rules": [{"match": {}}]}, "rules[0]", "missing 'arms'"),
        ({"rules": ["x"]}, "rules[0]", "must be a table, got str"),
        (
            {"rules": [{"match": {"priority": ["P9"]}, "arms": [{"spawner": "a"}]}]},
            "rules[0].match.priority",
            "unknown value 'P9' (valid: P0, P1, P2, P3, P4)",
        ),
        (
            {"rules": [{"match": {"owner": "me"}, "arms": [{"spawner": "a"}]}]},
            "rules[0].match.owner",
            "unknown key (valid: priority, effort, prefix)",
        ),
        (
            {"rules": [{"match": {"prefix": []}, "arms": [{"spawner": "a"}]}]},
            "rules[0].match.prefix",
            "must be a non-empty list",
        ),
        ({"default": []}, "default", "must list at least one arm"),
        ({"default": [{"model": "x"}]}, "default[0]", "missing 'spawner'"),
        ({"default": [{"spawner": "a", "model": 3}]}, "default[0].model", "non-empty string"),
        ({"default": [{"spawner": ""}]}, "default[0].spawner", "non-empty string"),
        (
            {"default": [{"spawner": "a"}, {"spawner": "a"}]},
            "default[1]",
            "duplicate arm 'a'",
        ),
    ],
)
def test_bad_pyproject_table_names_the_entry(
    tmp_path: Path, table: dict[str, Any], where: str, message: str
) -> None:
    with pytest.raises(UsageError) as info:
        load_table(settings(tmp_path, table))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{tmp_path / 'pyproject.toml'} [tool.chump.routing] {where}: "), text
    assert message in text


def test_bad_yaml_table_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / ".chump" / "routing.yaml"
    path.parent.mkdir()
    path.write_text(
        "rules:\n"
        "  - match: {effort: [s]}\n"
        "    arms: [{spawner: codex}]\n"
        "  - arms:\n"
        "      - spawner: claude\n"
        "      - model: opus\n"
    )
    with pytest.raises(UsageError, match=rf"^{path}:6: rules\[1\]\.arms\[1\]: missing 'spawner'$"):
        load_table(settings(tmp_path))
    path.write_text("rules: [\n  - x\n")
    with pytest.raises(UsageError, match=rf"^{path}:\d+: not valid YAML"):
        load_table(settings(tmp_path))


# --- stats --------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.for_repo(tmp_path)


def test_stats_prefer_the_task_class_and_back_off_to_all_rows(store: Store) -> None:
    for outcome in ("shipped", "race_abandoned", "killed"):
        add_outcome(store.conn, "claude", outcome, "infra")
    for outcome in ("shipped", "ci_failed", "stalled", "shipped"):
        add_outcome(store.conn, "claude", outcome, "docs")
    add_outcome(store.conn, "codex", "shipped", "docs")
    add_outcome(store.conn, "codex", "killed", "api")
    stats = arm_stats(store, Gap("INFRA-1"), [CLAUDE, CODEX, Arm("aider")])
    assert stats == {
        CLAUDE: ArmStats(2, 1),  # infra rows only
        CODEX: ArmStats(1, 1),  # no infra row: every codex row
        Arm("aider"): ArmStats(0, 0),
    }


def test_stats_match_models_exactly_and_accept_a_connection(store: Store) -> None:
    add_outcome(store.conn, "claude", "shipped", model="opus")
    add_outcome(store.conn, "claude", "killed", model="")
    stats = arm_stats(store.conn, Gap("INFRA-1"), [OPUS, CLAUDE])
    assert stats == {OPUS: ArmStats(1, 0), CLAUDE: ArmStats(0, 1)}
    assert overall_stats(store) == {CLAUDE: ArmStats(0, 1), OPUS: ArmStats(1, 0)}


# --- strategies ---------------------------------------------------------------------


class ConstantRng(random.Random):
    def betavariate(self, alpha: float, beta: float) -> float:
        return 0.5


def test_thompson_is_deterministic_with_a_seed_and_returns_posterior_means() -> None:
    arms = [CLAUDE, CODEX, OPUS]
    stats = {CLAUDE: ArmStats(3, 1), CODEX: ArmStats(0, 2)}

    def run(seed: int) -> list[Arm]:
        rng = random.Random(seed)
        return [thompson(arms, stats, rng)[0] for _ in range(50)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    _, means = thompson(arms, stats, random.Random(0))
    assert means == {"claude": 4 / 6, "codex": 1 / 4, "claude:opus": 0.5}
    assert posterior_mean(ArmStats()) == 0.5


def test_thompson_ties_go_to_the_earlier_candidate_and_cascade_is_first() -> None:
    assert thompson([CODEX, CLAUDE], {}, ConstantRng())[0] == CODEX
    assert cascade([CODEX, CLAUDE]) == CODEX
    with pytest.raises(ValueError, match="at least one"):
        thompson([], {}, random.Random(0))


def test_thompson_follows_strong_evidence() -> None:
    stats = {CLAUDE: ArmStats(2, 40), CODEX: ArmStats(40, 2)}
    rng = random.Random(1)
    picks = [thompson([CLAUDE, CODEX], stats, rng)[0] for _ in range(200)]
    assert picks.count(CODEX) == 200


# --- the built-in hook and choose_arm -----------------------------------------------


def route(pm: Any, arms: Sequence[Arm], stats: Mapping[Arm, ArmStats]) -> Arm:
    arm: Arm = pm.hook.chump_route(gap=Gap("A-1"), candidates=arms, stats=stats)
    return arm


def test_builtin_router_is_seeded_by_configure_and_honours_cascade(tmp_path: Path) -> None:
    arms = [CLAUDE, CODEX, OPUS]
    runs = []
    for _ in range(2):
        pm = get_plugin_manager(env={})
        pm.hook.chump_configure(settings=settings(tmp_path, routing_seed=3))
        runs.append([route(pm, arms, {}) for _ in range(30)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3
    pm = get_plugin_manager(env={})
    pm.hook.chump_configure(settings=settings(tmp_path, routing_strategy="cascade"))
    assert {route(pm, arms, {OPUS: ArmStats(9, 0)}) for _ in range(20)} == {CLAUDE}
    assert builtin_router.Router().route([], {}) is None


def test_a_plugin_overrides_the_builtin_router() -> None:
    class Last:
        @staticmethod
        def chump_route(gap: Gap, candidates: Sequence[Arm], stats: object) -> Arm:
            return candidates[-1]

    pm = get_plugin_manager(extra=[Last()], env={})
    assert route(pm, [CLAUDE, CODEX], {}) == CODEX


def make_app(tmp_path: Path, plugins: Sequence[object] = (), **env: str) -> App:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.chump]\nrouting_seed = 5\n[tool.chump.routing]\ndefault = [{ spawner = "claude" }, '
        '{ spawner = "codex" }]\n'
    )
    return App.create({"repo_root": str(tmp_path)}, env=env, plugins=plugins)


def test_choose_arm_routes_through_the_hook_with_stored_stats(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with Store.for_repo(tmp_path) as store:
        for _ in range(30):
            add_outcome(store.conn, "codex", "shipped")
            add_outcome(store.conn, "claude", "killed")
        arm, means = choose_arm(app, store, Gap("INFRA-1"))
    assert arm == CODEX
    assert means == {"claude": 1 / 32, "codex": 31 / 32}


def test_choose_arm_falls_back_to_the_first_candidate(tmp_path: Path) -> None:
    class Rogue:
        @staticmethod
        def chump_route(gap: Gap, candidates: Sequence[Arm], stats: object) -> Arm:
            return Arm("nonexistent")

    warnings: list[str] = []
    app = make_app(tmp_path, plugins=[Rogue()])
    with Store.for_repo(tmp_path) as store:
        arm, _ = choose_arm(app, store, Gap("A-1"), warn=warnings.append)
        assert arm == CLAUDE
        assert warnings == [
            "chump_route returned Arm(spawner='nonexistent', model=None), not a candidate arm"
        ]
        with pytest.warns(RuntimeWarning, match="not a candidate"):
            choose_arm(app, store, Gap("A-1"))
        silent = make_app(tmp_path, CHUMP_DISABLE_PLUGINS="pytest_chump.learn.plugin")
        assert choose_arm(silent, store, Gap("A-1"), warn=warnings.append)[0] == CLAUDE
    assert len(warnings) == 1


# --- simulation: Thompson learns the best arm ----------------------------------------

SHIP_P = {Arm("p30"): 0.3, Arm("p50"): 0.5, Arm("p80"): 0.8}
ARMS = list(SHIP_P)  # the worst arm first: what a static cascade would always pick


Choose = Callable[[Mapping[Arm, ArmStats], random.Random], Arm]


def by_thompson(stats: Mapping[Arm, ArmStats], rng: random.Random) -> Arm:
    return thompson(ARMS, stats, rng)[0]


def by_cascade(stats: Mapping[Arm, ArmStats], rng: random.Random) -> Arm:
    return cascade(ARMS)


def simulate(seed: int, choose: Choose = by_thompson, store: Store | None = None) -> int:
    """Ships over the last 100 of 300 dispatches, each routed by ``choose`` on the stats so far."""
    route_rng, world = random.Random(seed), random.Random(seed + 10_000)
    counts = {arm: [0, 0] for arm in ARMS}
    shipped = []
    for _ in range(300):
        if store is None:
            stats = {arm: ArmStats(s, f) for arm, (s, f) in counts.items()}
        else:
            stats = arm_stats(store, Gap("SIM-1"), ARMS)
        arm = choose(stats, route_rng)
        ok = world.random() < SHIP_P[arm]
        counts[arm][0 if ok else 1] += 1
        if store is not None:
            add_outcome(store.conn, arm.spawner, "shipped" if ok else "ci_failed", "sim")
        shipped.append(ok)
    return sum(shipped[-100:])


def test_thompson_nearly_matches_the_oracle_and_beats_cascade(tmp_path: Path) -> None:
    seeds = range(12)
    in_memory = [simulate(seed) for seed in seeds]
    with Store.for_repo(tmp_path) as store:
        through_store = simulate(99, store=store)
        assert sum(s.successes + s.failures for s in overall_stats(store).values()) == 300
    runs = [*in_memory, through_store]
    oracle = 100 * max(SHIP_P.values())  # expected ships of always picking the best arm
    assert statistics.mean(runs) >= 0.95 * oracle, runs
    assert through_store >= 0.85 * oracle
    cascades = [simulate(seed, by_cascade) for seed in seeds]
    assert all(t > c + 20 for t, c in zip(in_memory, cascades, strict=True)), cascades


def test_the_documented_example_table_parses(tmp_path: Path) -> None:
    import textwrap
    import tomllib

    from pytest_chump.learn import routing

    doc = routing.__doc__ or ""
    example = textwrap.dedent(doc[doc.index("::") + 2 : doc.index("The first rule")])
    table = load_table(settings(tmp_path, tomllib.loads(example)["tool"]["chump"]["routing"]))
    assert candidates(table, Gap("A-1", priority="P0", effort="xl")) == [OPUS, CODEX]
    assert candidates(table, Gap("INFRA-1")) == [CODEX]
    assert candidates(table, Gap("A-1")) == [CLAUDE]
