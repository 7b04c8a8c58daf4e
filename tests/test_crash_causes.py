"""Crash classification: what a WorkerCrashed says about how the worker died."""

from __future__ import annotations

import signal

from snakepit_trio._supervision._crash import classify, oom_kill_count

MB = 2**20


def test_the_pools_own_kills_keep_their_reason() -> None:
    v = classify(
        exit_code=None,
        signal=signal.SIGKILL,
        killed_by_pool=("unresponsive", "no answer to heartbeats"),
        last_rss=10 * MB,
        oom_kills_rose=True,
    )
    assert (v.cause, v.detail) == ("unresponsive", "no answer to heartbeats")


def test_sigkill_with_oom_evidence_is_likely_oom() -> None:
    v = classify(
        exit_code=None, signal=signal.SIGKILL, killed_by_pool=None, last_rss=900 * MB,
        oom_kills_rose=True,
    )  # fmt: skip
    assert v.cause == "oom" and "oom_kill count rose" in v.detail and "900 MB" in v.detail
    near = classify(
        exit_code=None, signal=signal.SIGKILL, killed_by_pool=None, last_rss=95 * MB,
        oom_kills_rose=False, memory_limit_mb=100,
    )  # fmt: skip
    assert near.cause == "oom" and "max_memory_mb" in near.detail


def test_sigkill_without_evidence_and_other_exits() -> None:
    v = classify(
        exit_code=None, signal=signal.SIGKILL, killed_by_pool=None, last_rss=None,
        oom_kills_rose=False, memory_limit_mb=100,
    )  # fmt: skip
    assert v.cause == "signal" and "RSS unknown" in v.detail
    assert (
        classify(
            exit_code=None,
            signal=signal.SIGSEGV,
            killed_by_pool=None,
            last_rss=1,
            oom_kills_rose=False,
        ).cause
        == "signal"
    )
    assert (
        classify(
            exit_code=3, signal=None, killed_by_pool=None, last_rss=None, oom_kills_rose=False
        ).cause
        == "exit"
    )


def test_oom_counter_reads_an_int_or_none() -> None:
    count = oom_kill_count()
    assert count is None or count >= 0
