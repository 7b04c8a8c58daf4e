"""End-to-end (real worker processes): retry= and breaker= against crashes, queue timeouts
and a failing tool. What outlives a crashed worker (call counts) is kept in files.

Every wait is bounded by trio.fail_after; the only sleep waits for a breaker's own
reset_timeout (a deadline, not a guess).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import trio

import snakepit_trio as sp
from tests.helpers import wait_for

FLAKY = "tests.adapters.flaky:Flaky"


def count(path: Path) -> int:
    return int(path.read_text().split()[0])


async def test_an_idempotent_call_succeeds_after_crashes(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    policy = sp.RetryPolicy(attempts=4, initial=0.01, max_delay=0.05)
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2, max_retries=0) as pool:
            args = {"path": str(calls), "crashes": 3}
            assert await pool.execute("crash_first", args, retry=policy, idempotent=True) == 4
            assert count(calls) == 4 and pool.stats().crashes == 3


async def test_a_crash_is_not_retried_unless_the_call_is_idempotent(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2, max_retries=0) as pool:
            with pytest.raises(sp.WorkerCrashed) as info:
                await pool.execute(
                    "crash_first", {"path": str(calls), "crashes": 1}, retry=sp.RetryPolicy()
                )
            assert info.value.exit_code == 3 and count(calls) == 1
            assert "not idempotent" in info.value.__notes__[0]


async def test_a_queue_timeout_is_retried(tmp_path: Path) -> None:
    release = tmp_path / "release"
    failed = trio.Event()
    policy = sp.RetryPolicy(
        attempts=1000, initial=0.01, max_delay=0.05, on_retry=lambda *_: failed.set()
    )
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=1, queue_timeout=0.05) as pool:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pool.execute, "block", {"path": str(release)})
                await wait_for(lambda: pool.stats().busy == 1)
                result: list[object] = []

                async def retried() -> None:
                    result.append(await pool.execute("ok", {"value": 5}, retry=policy))

                nursery.start_soon(retried)
                await failed.wait()  # a QueueTimeout was retried at least once
                release.touch()
            assert result == [5] and pool.stats().queue_timeouts >= 1


async def test_the_breaker_opens_and_a_half_open_probe_closes_it(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    changes: list[tuple[str, str]] = []
    breaker = sp.CircuitBreaker(
        failure_threshold=2,
        reset_timeout=0.2,
        name="flaky",
        on_state_change=lambda _, old, new: changes.append((old, new)),
    )
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2) as pool:
            call = functools.partial(
                pool.execute, "fail_first", {"path": str(calls), "failures": 2}, breaker=breaker
            )
            for _ in range(2):
                with pytest.raises(sp.RemoteError, match="ConnectionError"):
                    await call()
            with pytest.raises(sp.CircuitOpen) as info:
                await call()
            assert count(calls) == 2 and 0 < info.value.retry_in <= 0.2
            await trio.sleep(breaker.retry_in)  # its reset_timeout
            assert breaker.state == "half_open"
            assert await call() == 3  # the probe
            assert breaker.state == "closed"
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_retry_rides_out_an_open_breaker_within_its_budget(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    breaker = sp.CircuitBreaker(failure_threshold=1, reset_timeout=0.2)
    policy = sp.RetryPolicy(attempts=3, initial=0.01, retry_on="ConnectionError", budget=30)
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=1) as pool:
            args = {"path": str(calls), "failures": 1}
            # Fails (the breaker opens), waits out retry_in, then the probe succeeds.
            assert await pool.execute("fail_first", args, retry=policy, breaker=breaker) == 2
            assert breaker.state == "closed"
