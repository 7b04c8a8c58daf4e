"""Heartbeats: a worker that is alive but wedged is noticed within 3 s and replaced."""

from __future__ import annotations

import os
import signal

import pytest
import trio

import snakepit_trio as sp
from tests.helpers import wait_for

ECHO = "tests.adapters.basic:Echo"


async def test_a_stopped_worker_gets_no_new_calls_and_is_replaced_within_3s() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=2) as pool:
            errors: list[BaseException] = []

            async def victim() -> None:
                try:
                    await pool.execute("sleep", {"seconds": 30})
                except sp.WorkerCrashed as exc:
                    errors.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(victim)
                await wait_for(lambda: pool.stats().in_flight == 1)
                stopped = next(w for w in pool.workers() if w.in_flight)
                os.kill(stopped.pid, signal.SIGSTOP)
                stopped_at = trio.current_time()
                # Quiet for two heartbeat intervals: it takes no new calls, and calls
                # submitted now run on the other worker.
                await wait_for(lambda: _silent(pool, stopped.id) >= 1.0)
                pids = {await pool.execute("pid") for _ in range(20)}
                assert pids == {w.pid for w in pool.workers() if w.id != stopped.id}
            detected = trio.current_time() - stopped_at
            assert detected <= 3.0, f"a stopped worker was noticed after {detected:.2f}s"
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
            assert trio.current_time() - start <= 3.0
            await wait_for(lambda: pool.stats().workers == 1)
            assert await pool.execute("add", {"a": 1}) == 2


async def test_busy_workers_answer_heartbeats_and_stats_stay_fast() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=2, heartbeat_timeout=1.0) as pool:
            results: list[str] = []

            async def long_call() -> None:
                results.append(await pool.execute("sleep", {"seconds": 2.5}))

            async with trio.open_nursery() as nursery:
                for _ in range(2):
                    nursery.start_soon(long_call)
                await wait_for(lambda: pool.stats().busy == 2)
                for _ in range(10):
                    t0 = trio.current_time()
                    stats, workers = pool.stats(), pool.workers()
                    assert trio.current_time() - t0 < 0.1
                    assert stats.busy == 2 and len(workers) == 2
                    await trio.sleep(0.1)  # spread the samples over the long calls
            # Running 2.5 s with a 1 s heartbeat timeout: busy is not wedged.
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
