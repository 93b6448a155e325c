"""What dispatches cost and what a run may spend: claude's real result-event shape carries
USD and tokens into the store, the reflections, ``chump costs`` and ``chump status``; a run
budget stops new dispatches once reached; a daily budget counts every run of the day."""

from __future__ import annotations

import json
import stat
import sys
import time
from pathlib import Path

from pytest_chump.reflect.usage import Usage, usage_of
from pytest_chump.state.store import Store
from tests.chumpproc import ChumpProcess
from tests.gitrepos import AGENT as SHIP
from tests.gitrepos import repo  # noqa: F401  (fixture)

EXECUTE = ("dispatch", "--no-dry-run", "--watch")
FOUR = "gaps:\n" + "".join(f"  - {{id: B-{n}, priority: P1, effort: s}}\n" for n in range(4))
RESULT = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "num_turns": 3,
    "result": "done",
    "total_cost_usd": 0.3,
    "usage": {
        "input_tokens": 1200,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 4000,
        "output_tokens": 450,
    },
}
FAKE_CLAUDE = """\
#!{python}
import json, runpy, sys
print(json.dumps({result}), flush=True)  # said before the work lands: the test has no race
sys.argv = [{ship!r}]
runpy.run_path({ship!r}, run_name="__main__")  # does the work: commits, lands it on main
"""


def _claude(repo: Path, tmp_path: Path, **settings: str) -> None:
    binary = tmp_path / "claude"
    binary.write_text(FAKE_CLAUDE.format(python=sys.executable, ship=str(SHIP), result=RESULT))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    text = (repo / "pyproject.toml").read_text().replace('spawner = "script"', 'spawner = "claude"')
    extra = "".join(f"{k} = {v}\n" for k, v in settings.items())
    text = text.replace("[tool.chump.spawners.script]", f"{extra}\n[tool.chump.spawners.script]")
    text += f'\n[tool.chump.spawners.claude]\nbinary = "{binary}"\n'
    (repo / "pyproject.toml").write_text(text)
    (repo / "docs/gaps.yaml").write_text(FOUR)


def test_usage_from_claude_and_codex_reports() -> None:
    assert usage_of(RESULT) == Usage(0.3, 1200, 450, 4300)
    codex = {"usage": {"input_tokens": 900, "cached_input_tokens": 100, "output_tokens": 50}}
    assert usage_of(codex) == Usage(None, 900, 50, 100)
    assert usage_of({"total_cost_usd": True, "usage": {"input_tokens": -1}}) == Usage()


def test_a_run_budget_stops_new_dispatches_and_costs_are_shown(repo: Path, tmp_path: Path) -> None:
    _claude(repo, tmp_path, budget_usd="0.5")
    events = tmp_path / "events.jsonl"
    chump = ChumpProcess(repo, *EXECUTE, "--max-parallel", "1", "--events", str(events))
    assert chump.finish() == 0, chump.text
    assert "BUDGET: run budget $0.5 reached ($0.60 spent): nothing new is dispatched" in chump.text
    told = [json.loads(line) for line in events.read_text().splitlines()]
    (budget,) = [e for e in told if e["event"] == "budget"]
    assert budget["reason"] == "run budget $0.5 reached ($0.60 spent)"
    assert budget["on_budget"] == "finish"
    with Store.for_repo(repo) as store:
        rows = store.dispatches()
        reflections = store.reflections()
    assert [(r.gap_id, r.outcome, r.cost_usd) for r in rows] == [
        ("B-0", "shipped", 0.3),
        ("B-1", "shipped", 0.3),
    ]
    assert (rows[0].tokens_in, rows[0].tokens_out, rows[0].tokens_cache) == (1200, 450, 4300)
    assert {(r["cost_usd"], r["input_tokens"], r["cache_tokens"]) for r in reflections} == {
        (0.3, 1200, 4300)
    }
    costs = ChumpProcess(repo, "costs", "--by", "gap", "--json")
    costs.finish()
    groups = {g["gap"]: g for g in map(json.loads, costs.lines)}
    assert groups["(total)"]["usd"] == 0.6
    assert groups["B-0"]["tokens_out"] == 450
    lessons = ChumpProcess(repo, "lessons")
    lessons.finish()
    assert "2 of 2 shipped (100%)" in lessons.text
    assert "median $0.30" in lessons.text
    status = ChumpProcess(repo, "status")
    status.finish()
    assert any("B-0" in line and "$0.30" in line for line in status.lines), status.text


def test_a_daily_budget_counts_the_day_s_earlier_runs(repo: Path, tmp_path: Path) -> None:
    _claude(repo, tmp_path, daily_budget_usd="1")
    with Store.for_repo(repo) as store:  # an earlier run today spent a dollar
        earlier = store.add_dispatch("OLD-1", "chump/old-1", str(repo), "claude", "h:1:1")
        store.finish_dispatch(earlier, "shipped", cost_usd=1.0)
    chump = ChumpProcess(repo, *EXECUTE)
    assert chump.finish() == 0, chump.text
    assert "BUDGET: daily budget $1 reached ($1.00 spent today)" in chump.text
    assert "DISPATCHED" not in chump.text
    with Store.for_repo(repo) as store:
        yesterday = time.time() - 2 * 86400
        store.conn.execute("UPDATE dispatches SET ended_at=?", (yesterday,))
    again = ChumpProcess(repo, *EXECUTE)
    assert again.finish() == 0, again.text
    first = again.text.index("DISPATCHED: B-0")  # yesterday's spending is yesterday's
    assert "BUDGET" not in again.text[:first]


STOPPABLE = """\
#!{python}
import json, os, runpy, sys, time
print(json.dumps({result}), flush=True)
if os.environ["CHUMP_GAP_ID"] != "B-0":
    time.sleep(600)  # still at work when the budget is reached
sys.argv = [{ship!r}]
runpy.run_path({ship!r}, run_name="__main__")
"""


def test_on_budget_stop_stops_the_running_agents_and_says_so(repo: Path, tmp_path: Path) -> None:
    _claude(repo, tmp_path, budget_usd="0.2", on_budget='"stop"', kill_grace='"5s"')
    binary = tmp_path / "claude"
    binary.write_text(STOPPABLE.format(python=sys.executable, ship=str(SHIP), result=RESULT))
    heard = tmp_path / "heard.jsonl"
    code = f"import sys; open({str(heard)!r}, 'a').write(sys.stdin.read() + chr(10))"
    with (repo / "pyproject.toml").open("a") as fh:
        fh.write(
            f'\n[tool.chump.notify]\ncommand = ["{sys.executable}", "-c", {json.dumps(code)}]\n'
        )
    chump = ChumpProcess(repo, *EXECUTE)
    assert chump.finish() == 0, chump.text
    assert "BUDGET: run budget $0.2 reached ($0.30 spent): nothing new is dispatched" in chump.text
    with Store.for_repo(repo) as store:
        outcomes = {r.gap_id: (r.outcome, r.cause) for r in store.dispatches()}
    assert outcomes["B-0"] == ("shipped", "")
    assert outcomes["B-1"] == ("killed", "interrupted")  # stopped, not left to spend more
    assert set(outcomes) == {"B-0", "B-1"}
    events = [json.loads(line)["event"] for line in heard.read_text().splitlines()]
    assert "budget-reached" in events
