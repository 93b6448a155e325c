"""Latency histograms: fixed buckets, saved at most every ``SAVE_EVERY_S`` and once at the end."""

from __future__ import annotations

from pytest_chump.loop.timings import BUCKETS, SAVE_EVERY_S, Timings


def test_the_first_save_waits_for_the_interval_and_the_last_is_forced() -> None:
    saved: list[dict[str, object]] = []
    timings = Timings(save=saved.append)
    timings.flush(force=True)
    assert saved == []  # nothing observed: nothing to save
    timings.observe("provider_poll_seconds", 0.02)
    timings.flush()
    assert saved == []  # a run shorter than the interval saves once, when it ends
    timings._saved_at -= SAVE_EVERY_S
    timings.flush()
    assert len(saved) == 1
    timings.observe("refill_latency_seconds", 1e9)
    timings.flush()
    assert len(saved) == 1  # the interval starts again
    timings.flush(force=True)
    assert len(saved) == 2
    body = saved[-1]
    assert body["buckets"] == list(BUCKETS)
    poll, refill = body["provider_poll_seconds"], body["refill_latency_seconds"]
    assert isinstance(poll, dict)
    assert isinstance(refill, dict)
    assert poll["count"] == 1
    assert poll["buckets"][2] == 1  # 0.02 s: in the (0.01, 0.025] bucket
    assert refill["buckets"][-1] == 1  # beyond the last bound
