"""Pool layer: no call waits behind a stuck or slow worker; exact recycling; fair sessions.

Each test reproduces a failure seen from outside with real workers, here at exact virtual
times over in-memory workers. "Stubborn" calls ignore cancellation, as sync code in a
thread does.
"""

from __future__ import annotations

import collections
import logging

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import faults, open_fake_pool
from tests.pool.adapters import START_DELAY, Tools

Clock = trio.testing.MockClock


async def warm_up(pool: sp.Pool, n: int = 20) -> None:
    """Short calls on every worker, so the pool prefetches onto them."""
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(pool.execute, "echo", {"value": 1})


async def test_calls_never_queue_behind_a_timed_out_call_that_runs_on(
    autojump_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio")
    async with open_fake_pool(Tools, size=2, cancel_grace=0.5) as pool:
        await warm_up(pool)
        start = trio.current_time()
        with pytest.raises(sp.RequestTimeout):
            await pool.execute("stubborn", {"seconds": 30}, timeout=0.1)
        [held] = [wk for wk in pool.workers() if not wk.accepting]
        assert [(c.tool, c.cancelled) for c in held.calls] == [("stubborn", True)]
        # 50 short calls, each with a deadline: none may wait behind the stuck call.
        done: list[float] = []

        async def short() -> None:
            await pool.execute("sleep", {"seconds": 0.01}, timeout=1)
            done.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(short)
        assert len(done) == 50
        assert max(done) < start + 0.1 + 50 * 0.01 + 0.01
        # An idempotent call with no deadline ends too (a retry must not park there).
        assert await pool.execute("echo", {"value": 2}, idempotent=True) == 2
        # Once past cancel_grace, the stuck call is reported, once.
        await trio.sleep(1)
        stuck = [r for r in caplog.records if "after cancel_grace" in r.getMessage()]
        assert len(stuck) == 1 and "stubborn" in stuck[0].getMessage()


async def test_calls_prefetched_behind_a_long_call_move_to_an_idle_worker(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Tools, size=2, queue_timeout=0.5) as pool:
        await warm_up(pool)
        start = trio.current_time()
        ended: list[float] = []
        all_ended = trio.Event()

        async def short() -> None:
            await pool.execute("sleep", {"seconds": 0.001})
            ended.append(trio.current_time() - start)
            if len(ended) == 64:
                all_ended.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.execute, "sleep", {"seconds": 3})
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(64):  # some are prefetched behind the 3 s call
                nursery.start_soon(short)
            await trio.testing.wait_all_tasks_blocked()
            assert any(len(wk.calls) > 1 for wk in pool.workers() if wk.in_flight)
            with trio.fail_after(1):  # none waits for the long call, nor times out
                await all_ended.wait()
        assert max(ended) < 0.5


async def test_kill_on_cancel_requeues_calls_that_never_started(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1, kill_on_cancel=True, cancel_grace=1) as pool:
        await warm_up(pool)
        results: list[object] = []

        async def short(i: int) -> None:  # an async tool: it waits for the worker's slot
            await pool.execute("sleep", {"seconds": 0.001})
            results.append(i)

        async def stuck() -> None:
            with pytest.raises(sp.RequestTimeout):
                await pool.execute("stubborn", {"seconds": 60}, timeout=0.5)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stuck)
            await trio.testing.wait_all_tasks_blocked()
            for i in range(5):  # prefetched behind the stubborn call
                nursery.start_soon(short, i)
            await trio.testing.wait_all_tasks_blocked()
            [worker] = pool.workers()
            assert len(worker.calls) == 6
        # The stuck worker was killed; the calls that never started ran on its replacement.
        assert sorted(results) == [0, 1, 2, 3, 4]  # type: ignore[type-var]
        assert pool.stats().crashes == 1


async def test_max_requests_is_a_hard_limit(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=2, max_requests=5) as pool:
        served = collections.Counter(
            [await pool.execute("serial") for _ in range(30)] + await gather(pool, 30)
        )
        assert len(served) >= 12 and max(served.values()) <= 5
        assert pool.stats().errors == 0


async def gather(pool: sp.Pool, n: int) -> list[int]:
    out: list[int] = []

    async def one() -> None:
        out.append(await pool.execute("serial"))

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)
    return out


async def test_a_recycled_worker_that_crashes_is_not_restarted_beside_its_replacement(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Tools, size=1, max_requests=2) as pool:
        await pool.execute("echo", {"value": 1})

        async def last_call() -> None:
            with pytest.raises(sp.WorkerCrashed):
                await pool.execute("stubborn", {"seconds": 3})

        async with trio.open_nursery() as nursery:
            nursery.start_soon(last_call)
            await trio.testing.wait_all_tasks_blocked()
            [draining] = [wk for wk in pool.workers() if wk.in_flight]
            faults(pool).crash(draining.id)
        await trio.sleep(10)  # any restart would be up long before this
        assert len(pool.workers()) == 1


async def test_new_sessions_spread_over_workers(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=2) as pool:
        sessions: list[sp.Session] = []

        async def open_one() -> None:
            sessions.append(await pool.open_session(affinity="strict"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.execute, "sleep", {"seconds": 10})  # one busy worker
            await trio.testing.wait_all_tasks_blocked()
            for _ in range(20):
                nursery.start_soon(open_one)
            await trio.testing.wait_all_tasks_blocked()
            per_worker = collections.Counter(info.worker_id for info in pool.list_sessions())
            assert sorted(per_worker.values()) == [10, 10]
            nursery.cancel_scope.cancel()
        for session in sessions:
            session.close()


async def test_a_strict_session_never_binds_to_a_worker_on_its_way_out(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Tools, size=1, max_requests=2) as pool:
        first = await pool.execute("serial")
        START_DELAY[0] = 5.0  # the replacement takes a while to start
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pool.execute, "sleep", {"seconds": 1})  # its last call
                await trio.testing.wait_all_tasks_blocked()
                with trio.fail_after(60):  # before the fix: a session bound to a worker
                    async with pool.session(affinity="strict") as session:  # on its way out
                        assert await session.execute("serial") != first
        finally:
            START_DELAY[0] = 0.0


async def test_a_crash_names_the_tools_that_were_running(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1, worker_capacity=2) as pool:

        async def victim(tool: str) -> None:
            with pytest.raises(sp.WorkerCrashed) as caught:
                await pool.execute(tool, {"seconds": 10})
            assert caught.value.running == ("sleep", "stubborn")
            assert "while running 'sleep', 'stubborn'" in str(caught.value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(victim, "sleep")
            nursery.start_soon(victim, "stubborn")
            await trio.testing.wait_all_tasks_blocked()
            [worker] = pool.workers()
            assert sorted(c.tool for c in worker.calls) == ["sleep", "stubborn"]
            assert all(c.elapsed == 0 and not c.cancelled for c in worker.calls)
            faults(pool).crash(worker.id)
