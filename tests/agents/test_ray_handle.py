"""``RayJobHandle`` against a scripted Jobs API client: how each way a job ends is told, the
log copy across re-attaches and broken streams, and a loop that never waits for the cluster.
(The same handle against a real cluster: tests/agents/test_ray_cluster.py.)"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_chump.agents import ray_handle
from pytest_chump.agents.logfiles import read_record
from pytest_chump.agents.ray_handle import RayJobHandle
from pytest_chump.core.supervisor import mark_line
from tests.waiting import until


@dataclass
class Info:
    status: str
    driver_exit_code: int | None = None
    message: str = ""


@dataclass
class ScriptedJobs:
    """The Jobs API calls a handle makes, answered from what the test sets."""

    info: Info | Exception = field(default_factory=lambda: Info("RUNNING"))
    log: list[str] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)  # the log stream ends
    breaks_after: int | None = None  # a stream breaks after this many chunks (once)
    hang: threading.Event | None = None  # status requests wait for it (a silent head)
    stops: list[str] = field(default_factory=list)
    streams: int = 0

    def get_job_info(self, job_id: str) -> Info:
        if self.hang is not None:
            self.hang.wait()
        if isinstance(self.info, Exception):
            raise self.info
        return self.info

    def stop_job(self, job_id: str) -> bool:
        self.stops.append(job_id)
        return True

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        import asyncio

        self.streams += 1
        sent = 0
        while True:
            if sent < len(self.log):
                yield self.log[sent]
                sent += 1
                if self.breaks_after is not None and sent == self.breaks_after:
                    self.breaks_after = None
                    raise ConnectionError("stream broke")
                continue
            if self.ended.is_set():
                return
            await asyncio.sleep(0.01)


def handle(tmp_path: Path, jobs: ScriptedJobs, **kwargs: object) -> RayJobHandle:
    return RayJobHandle(
        lambda: jobs,
        "chump-r-1-abc",
        tmp_path / "logs" / "r-1.log",
        record_path=tmp_path / "agents" / "1.json",
        **kwargs,  # type: ignore[arg-type]
    )


def finish(h: RayJobHandle, timeout: float = 30) -> int:
    assert until(lambda: h.poll() is not None, timeout=timeout)
    status = h.poll()
    assert status is not None
    h.close()
    return status


def result_line(exit_code: int) -> str:
    body = json.dumps({"exit": exit_code, "pushed": "", "error": ""})
    return mark_line(f"ray-job: {body}").decode().rstrip("\n")


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_handle, "STATUS_EVERY", 0.01)
    monkeypatch.setattr(ray_handle, "RECONNECT_AFTER", 0.01)
    monkeypatch.setattr(ray_handle, "CLOSE_GRACE", 5.0)


def test_a_succeeded_job_is_0_with_its_output_in_the_local_logs(tmp_path: Path) -> None:
    jobs = ScriptedJobs(log=["hello\n", "[stderr] ERROR: boom\n", result_line(0) + "\n"])
    h = handle(tmp_path, jobs)
    jobs.info, _ = Info("SUCCEEDED", 0), jobs.ended.set()
    assert finish(h) == 0
    assert "hello" in (tmp_path / "logs" / "r-1.log").read_text()
    assert (tmp_path / "logs" / "r-1.stderr.log").read_text() == "ERROR: boom\n"
    assert h.stderr_tail() == ["ERROR: boom"]
    assert "ended_by" not in h.report()


def test_a_failed_job_is_the_agents_status(tmp_path: Path) -> None:
    jobs = ScriptedJobs(log=[result_line(3) + "\n"], info=Info("FAILED", 3))
    jobs.ended.set()
    h = handle(tmp_path, jobs)
    assert finish(h) == 3
    assert "ended_by" not in h.report()


@pytest.mark.parametrize(
    ("info", "why"),
    [
        (Info("FAILED", None, "Job supervisor actor died"), "Job supervisor actor died"),
        (Info("STOPPED"), "stopped by the cluster or someone else"),
        (RuntimeError("Job chump-r-1-abc does not exist"), "does not know the job"),
    ],
)
def test_a_job_lost_to_the_cluster_is_worker_lost(
    tmp_path: Path, info: Info | Exception, why: str
) -> None:
    jobs = ScriptedJobs(info=info)
    jobs.ended.set()
    h = handle(tmp_path, jobs)
    assert finish(h) == 1
    report = h.report()
    assert report["ended_by"] == "worker-lost"
    assert why in str(report["ended_why"])


def test_a_job_this_side_stopped_is_143_not_lost(tmp_path: Path) -> None:
    jobs = ScriptedJobs()
    h = handle(tmp_path, jobs)
    h.terminate()
    assert until(lambda: jobs.stops == ["chump-r-1-abc"])
    jobs.info = Info("STOPPED")
    jobs.ended.set()
    assert finish(h) == 143
    assert "ended_by" not in h.report()


def test_the_loop_never_waits_for_a_silent_cluster_and_gives_up_after_lost_after(
    tmp_path: Path,
) -> None:
    jobs = ScriptedJobs(hang=threading.Event())
    h = handle(tmp_path, jobs, lost_after=0.3)
    try:
        assert h.poll() is None  # returns at once although the request hangs
        assert until(lambda: h.poll() is not None, timeout=10)
        assert h.poll() == 1
        assert "has not answered for 0.3s" in str(h.report()["ended_why"])
        assert until(lambda: jobs.stops == ["chump-r-1-abc"])  # stopped all the same
    finally:
        assert jobs.hang is not None
        jobs.hang.set()
        jobs.ended.set()
        h.close()


def test_re_attaching_twice_copies_every_line_once(tmp_path: Path) -> None:
    lines = [f"line {n}\n" for n in range(6)]
    jobs = ScriptedJobs(log=lines[:2])
    first = handle(tmp_path, jobs)
    assert until(lambda: read_record(tmp_path / "agents" / "1.json").get("lines") == 2)
    first._closing_at = -1e9  # the orchestrator dies: its copy stops where it was
    first._thread.join(timeout=10)
    jobs.log += lines[2:4]
    second = handle(tmp_path, jobs, skip_lines=2)
    assert until(lambda: read_record(tmp_path / "agents" / "1.json").get("lines") == 4)
    second._closing_at = -1e9
    second._thread.join(timeout=10)
    jobs.log += lines[4:]
    jobs.ended.set()
    jobs.info = Info("SUCCEEDED", 0)
    third = handle(tmp_path, jobs, skip_lines=4)
    assert finish(third) == 0
    assert (tmp_path / "logs" / "r-1.log").read_text() == "".join(lines)


def test_a_broken_stream_is_opened_again_without_copying_twice(tmp_path: Path) -> None:
    lines = [f"line {n}\n" for n in range(5)]
    jobs = ScriptedJobs(log=lines, breaks_after=3, info=Info("SUCCEEDED", 0))
    jobs.ended.set()
    h = handle(tmp_path, jobs, skip_lines=1)  # re-attached, one line copied before
    assert finish(h) == 0
    assert jobs.streams == 2
    assert (tmp_path / "logs" / "r-1.log").read_text() == "".join(lines[1:])
