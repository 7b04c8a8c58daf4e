"""End-to-end (real workers, sync tools in threads): no call waits behind a stuck worker.

A sync tool cannot be interrupted: after its caller gives up it keeps its worker busy. The
pool must send that worker nothing new, and calls that were already waiting there (prefetched)
must move to another worker.
"""

from __future__ import annotations

import trio

import snakepit_trio as sp

ECHO = "tests.adapters.basic:Echo"


async def warm_up(pool: sp.Pool) -> None:
    """Short calls, so that the pool prefetches onto its workers."""
    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(pool.execute, "add", {"a": 1})


async def test_nothing_queues_behind_a_timed_out_call_that_runs_on() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(ECHO, size=2, drain_timeout=1) as pool:
            await warm_up(pool)
            try:
                await pool.execute("stubborn", {"seconds": 30}, timeout=0.2)
            except sp.RequestTimeout:
                pass
            [held] = [wk for wk in pool.workers() if not wk.accepting]
            assert [c.tool for c in held.calls] == ["stubborn"] and held.calls[0].cancelled
            pids: list[int] = []

            async def short() -> None:
                # Generous deadlines: each fails only if it waits behind the 30 s call.
                pids.append(await pool.execute("pid", timeout=10))

            async with trio.open_nursery() as nursery:
                for _ in range(50):
                    nursery.start_soon(short)
            assert len(pids) == 50 and held.pid not in pids
            assert await pool.execute("add", {"a": 1}, idempotent=True) == 2


async def test_calls_waiting_behind_a_long_call_move_to_another_worker() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(ECHO, size=2, queue_timeout=5) as pool:
            await warm_up(pool)
            done: list[str] = []
            all_done = trio.Event()

            async def short() -> None:
                done.append(await pool.execute("sleep", {"seconds": 0.001}, timeout=10))
                if len(done) == 64:
                    all_done.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pool.execute, "sleep", {"seconds": 20})
                for _ in range(64):  # some are prefetched behind the long call
                    nursery.start_soon(short)
                with trio.fail_after(15):  # well before the long call ends
                    await all_done.wait()
                nursery.cancel_scope.cancel()
            assert done == ["slept"] * 64
