"""Heartbeats: a worker that is alive but wedged is noticed and replaced.

The pool promises about heartbeat_timeout (2 s by default); these tests run real processes on
a possibly busy machine, so they check that much with generous bounds (exact time:
pool-layer test).
"""

from __future__ import annotations

import inspect
import os
import signal
import time

import pytest
import trio

import snakepit_trio as sp
from tests.helpers import wait_for

ECHO = "tests.adapters.basic:Echo"


async def test_a_stopped_worker_gets_no_new_calls_and_is_replaced() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=2) as pool:
            errors: list[BaseException] = []
            failed_at: list[float] = []

            async def victim() -> None:
                try:
                    await pool.execute("sleep", {"seconds": 30})
                except sp.WorkerCrashed as exc:
                    errors.append(exc)
                    failed_at.append(trio.current_time())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(victim)
                await wait_for(lambda: pool.stats().in_flight == 1)
                stopped = next(w for w in pool.workers() if w.in_flight)
                os.kill(stopped.pid, signal.SIGSTOP)
                stopped_at = trio.current_time()
                # Quiet for two heartbeat intervals: it takes no new calls; calls submitted
                # now run elsewhere (on the other worker, or on the stopped one's
                # replacement if that is already up).
                await wait_for(lambda: _silent(pool, stopped.id) >= 1.0)
                pids = {await pool.execute("pid") for _ in range(20)}
                assert pids and stopped.pid not in pids
            # Measured to the moment the call on it failed, not to the end of the calls above.
            [at] = failed_at
            detected = at - stopped_at
            assert detected < 8.0, f"a stopped worker was noticed after {detected:.2f}s"
            [err] = errors
            assert isinstance(err, sp.WorkerCrashed) and err.cause == "unresponsive"
            assert err.pid == stopped.pid and "heartbeat" in str(err)
            await wait_for(lambda: pool.stats().workers == 2)
            assert stopped.pid not in {w.pid for w in pool.workers()}
            assert await pool.execute("add", {"a": 1}) == 2


@pytest.mark.parametrize("tool", ["hold_gil", "block_loop"])
async def test_a_worker_blocked_in_code_holding_the_gil_is_replaced(tool: str) -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1) as pool:
            start = trio.current_time()
            with pytest.raises(sp.WorkerCrashed) as info:
                await pool.execute(tool, {"seconds": 20})
            assert info.value.cause == "unresponsive"
            # About heartbeat_timeout (2 s) after it blocked, long before its 20 s are up.
            assert trio.current_time() - start < 8.0
            await wait_for(lambda: pool.stats().workers == 1)
            assert await pool.execute("add", {"a": 1}) == 2


async def test_busy_workers_answer_heartbeats_and_stats_stay_fast() -> None:
    # stats() and workers() are plain functions: they cannot await a busy worker, so they
    # answer from the host's own state (workers() also reads each RSS from /proc).
    assert not inspect.iscoroutinefunction(sp.Pool.stats)
    assert not inspect.iscoroutinefunction(sp.Pool.workers)
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=2, heartbeat_timeout=2.0) as pool:
            results: list[str] = []

            async def long_call() -> None:
                results.append(await pool.execute("sleep", {"seconds": 5.0}))

            async with trio.open_nursery() as nursery:
                for _ in range(2):
                    nursery.start_soon(long_call)
                await wait_for(lambda: pool.stats().busy == 2)
                slowest = 0.0
                for _ in range(10):
                    t0 = time.perf_counter()
                    stats, workers = pool.stats(), pool.workers()
                    slowest = max(slowest, time.perf_counter() - t0)
                    assert stats.busy == 2 and len(workers) == 2
                    assert all(w.in_flight == 1 for w in workers)
                    await trio.sleep(0.1)  # spread the samples over the long calls
                # In-process bookkeeping: a generous bound, however busy the machine.
                assert slowest < 1.0
            # Running 5 s, well past the 2 s heartbeat timeout: busy is not wedged.
            assert results == ["slept", "slept"]
            assert pool.stats().crashes == 0


async def test_heartbeats_can_be_turned_off() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, heartbeat_timeout=None) as pool:
            assert await pool.execute("block_loop", {"seconds": 2.5}) == "done"
            assert pool.stats().crashes == 0


def test_heartbeat_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="heartbeat_timeout"):
        sp.PoolConfig(adapter=ECHO, heartbeat_interval=1.0, heartbeat_timeout=0.5)


def _silent(pool: sp.Pool, worker_id: str) -> float:
    return next((w.silent for w in pool.workers() if w.id == worker_id), 0.0)
