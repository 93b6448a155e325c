"""The pytest plugin: ``--chump-self-test`` anywhere, options and ini keys, the conftest bridge,
and the fixtures plugin authors use (tested with ``pytester``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SELF_TEST_LINE = re.compile(r"^self-test PASSED: rows=4 reflections=4 dummy_files=4 elapsed=\d+ms$")


def run_pytest(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHUMP_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_self_test_runs_anywhere_without_collecting_the_repos_tests(tmp_path: Path) -> None:
    (tmp_path / "test_broken.py").write_text("def test_fails():\n    assert False\n")
    proc = run_pytest(tmp_path, "--chump-self-test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert SELF_TEST_LINE.match(lines[0]), lines
    assert [ln.split()[0] for ln in lines[1:5]] == [f"SYNTH-00{i}" for i in range(1, 5)]
    assert all(ln.rstrip().endswith(f"shipped PR #{1000 + i}") for i, ln in enumerate(lines[1:5]))
    assert "collected" not in proc.stdout
    assert not (tmp_path / ".chump").exists()


def test_self_test_fails_loudly_naming_what_is_missing(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "--chump-self-test", CHUMP_FAULT_INJECT="spawn_fail")
    assert proc.returncode == 1
    first = proc.stdout.splitlines()[0]
    assert first.startswith("self-test FAILED: rows=0 ")  # spawn failures: no outcome rows
    assert "dummy_files=0" in first
    assert "no gap was dispatched" in first
    assert "SYNTH-001 was never dispatched" in first


def test_self_test_on_another_backlog_and_bad_backlog(tmp_path: Path) -> None:
    good = tmp_path / "two.yaml"
    good.write_text("gaps:\n  - {id: X-1, priority: P0, effort: xs}\n  - {id: X-2, priority: P2}\n")
    proc = run_pytest(tmp_path, "--chump-self-test", "--chump-self-test-backlog", str(good))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith("self-test PASSED: rows=2 reflections=2 dummy_files=2")
    bad = tmp_path / "bad.yaml"
    bad.write_text("gaps:\n  - id: ../x\n")
    proc = run_pytest(tmp_path, "--chump-self-test", "--chump-self-test-backlog", str(bad))
    assert proc.returncode == 4
    assert proc.stdout.startswith("bad.yaml:2: gaps[0].id: ")  # path:line: field: message
    assert "'../x'" in proc.stdout


def test_real_self_test_uses_git_worktrees_and_processes(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "--chump-self-test-real")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("self-test PASSED: rows=4 reflections=4 dummy_files=4")


def test_conftest_chump_hooks_take_part_in_the_self_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def chump_pick(gaps, request):
            # only ever the last ready gap: proves conftest hooks reach chump
            ready = [g for g in gaps if g.id not in request.busy_ids and g.id != "SYNTH-004"]
            return ready[-1:]
        """
    )
    result = pytester.runpytest("--chump-self-test")
    result.stdout.fnmatch_lines(
        [
            "self-test PASSED: rows=3 reflections=3 dummy_files=3 elapsed=*ms",
            "  SYNTH-003 *",
            "  SYNTH-002 *",
            "  SYNTH-001 *",
        ]
    )
    assert result.ret == 0


def test_settings_resolve_cli_over_env_over_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nchump_max_parallel = 3\nchump_spawner = codex\n")
    pytester.makepyfile(
        """
        from pytest_chump.pytest_plugin import chump_settings

        def test_settings(request):
            s = chump_settings(request.config)
            print("RESOLVED", s.max_parallel, s.spawner, s.base_ref)
        """
    )
    monkeypatch.setenv("CHUMP_SPAWNER", "aider")
    result = pytester.runpytest("-s", "--chump-base-ref", "origin/dev")
    result.stdout.fnmatch_lines(["*RESOLVED 3 aider origin/dev"])
    monkeypatch.delenv("CHUMP_SPAWNER")
    result = pytester.runpytest("-s", "--chump-max-parallel", "5")
    result.stdout.fnmatch_lines(["*RESOLVED 5 codex origin/main"])


def test_help_lists_the_chump_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*chump: self-dispatching orchestrator*",
            "*--chump-self-test*",
            "*--chump-max-parallel*",
            "*chump_max_parallel*",
        ]
    )


README_EXAMPLE = """
from pytest_chump import start

AGENT = (  # a toy agent: commit a file for the gap and land it on origin's main
    "import os, subprocess as s; g = os.environ['CHUMP_GAP_ID']; open(g, 'w').write(g); "
    "[s.run(['git', *a]) for a in (['add', g], ['commit', '-qm', g], "
    "['push', '-q', 'origin', 'HEAD:main'])]"
)


class EchoSpawner:
    name = "echo"

    def spawn(self, request):
        return start(["python", "-c", AGENT], cwd=request.worktree, env=request.env,
                     stdin_text=request.prompt, log_path=request.log_path,
                     notify=request.notify)


def test_echo_spawner_ships(chump_backlog, chump_run):
    chump_backlog([{"id": "DEMO-1", "priority": "P1", "effort": "s"},
                   {"id": "DEMO-2", "priority": "P1", "depends_on": ["DEMO-1"]}])
    result = chump_run(spawner=EchoSpawner(), provider="git")
    assert [o.name for o in result.outcomes.values()] == ["shipped", "shipped"]
    assert [r.gap_id for r in result.reflections] == ["DEMO-1", "DEMO-2"]
"""

EXTRA_FIXTURES = """
def test_fake_spawner_and_instant_provider(chump_backlog, chump_run, chump_fake_spawner,
                                           chump_instant_provider, chump_memory_sink):
    chump_backlog([{"id": "F-1", "priority": "P1", "effort": "s"}])
    result = chump_run(spawner=chump_fake_spawner, provider=chump_instant_provider)
    assert result.outcomes["F-1"].name == "shipped"
    assert result.outcomes["F-1"].pr_number == 1000
    assert len(chump_memory_sink.reflections) == 1
"""


def test_fixtures_let_a_plugin_author_test_a_spawner(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_echo=README_EXAMPLE, test_more=EXTRA_FIXTURES)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_readme_shows_the_plugin_author_example() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert README_EXAMPLE.strip() in readme  # the README's example is this tested code


PROMPT_CONFTEST = """
def chump_build_prompt(gap, dispatch, settings):
    return f"CUSTOM-PROMPT-MARKER gap={gap.id} branch={dispatch.branch} base={settings.base_ref}"
"""

PROMPT_TEST = f"""
import sys
from pytest_chump import start

AGENT = (  # commit the prompt it got on stdin as the gap's file and land it on origin's main
    "import os, sys, subprocess as s; g = os.environ['CHUMP_GAP_ID']; "
    "open(g, 'w').write(sys.stdin.read()); "
    "[s.run(['git', *a], check=True) for a in (['add', g], ['commit', '-qm', g], "
    "['push', '-q', 'origin', 'HEAD:main'])]"
)


class RecordingSpawner:
    name = "recording"

    def __init__(self):
        self.prompts = {{}}

    def spawn(self, request):
        self.prompts[request.gap.id] = request.prompt
        return start([{sys.executable!r}, "-c", AGENT], cwd=request.worktree, env=request.env,
                     stdin_text=request.prompt, log_path=request.log_path,
                     notify=request.notify)


def test_conftest_prompt_reaches_the_spawner(chump_repo, chump_backlog, chump_run,
                                             chump_git_provider):
    chump_backlog([{{"id": "PROMPT-1", "priority": "P1", "effort": "s"}}])
    spawner = RecordingSpawner()
    result = chump_run(spawner=spawner, provider=chump_git_provider)
    expected = "CUSTOM-PROMPT-MARKER gap=PROMPT-1 branch=chump/prompt-1 base=origin/main"
    assert spawner.prompts == {{"PROMPT-1": expected}}
    assert result.outcomes["PROMPT-1"].name == "shipped", result.output
    assert [r.gap_id for r in result.reflections] == ["PROMPT-1"]
    chump_repo.git("fetch", "--quiet", "origin")
    assert chump_repo.git("show", "origin/main:PROMPT-1") == expected  # the agent's stdin
"""


def test_conftest_build_prompt_is_bridged_into_chump_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PROMPT_CONFTEST)
    pytester.makepyfile(test_prompt=PROMPT_TEST)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
