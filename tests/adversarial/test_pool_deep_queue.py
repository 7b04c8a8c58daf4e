"""Pool layer (virtual clock): tens of thousands of calls waiting behind a blocked pool.

- 10,000 calls queue behind workers held by long calls; when those end, every queued call
  runs, with its own result (20,000 with real workers: test_deep_queue.py).
- A timeout storm over a deep queue (every waiting call's ``queue_timeout`` ends at the
  same instant) costs each call about what queueing it did: taking a call out of the
  middle of the queue cost a pass over it, so 20,000 timeouts held the host for seconds,
  more than three times what queueing them took. Measured as this process's CPU time.
- A waiting call costs the pool's own code under 1 KiB of the host's memory (tracemalloc,
  only what the package's files allocate; the caller's task and coroutine are the
  caller's): its record, handle and the frames it waits in. It was 2.9 KiB.
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import open_fake_pool
from tests.adapters.adversarial import Storm
from tests.adversarial.conftest import Seed, scaled

Clock = trio.testing.MockClock


async def test_ten_thousand_queued_calls_all_run(autojump_clock: Clock, seed: Seed) -> None:
    n = scaled(10_000, cap=100_000)
    done: list[int] = []
    async with open_fake_pool(Storm, size=2) as pool:

        async def one(i: int) -> None:
            assert await pool.execute("echo", {"value": i}) == i
            done.append(i)

        async with trio.open_nursery() as nursery:
            for _ in range(2):  # both workers, for 60 s
                nursery.start_soon(pool.execute, "sleep", {"seconds": 60})
            await trio.testing.wait_all_tasks_blocked()
            for i in range(n):
                nursery.start_soon(one, i)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.stats().queued == n and pool.stats().in_flight == 2
        assert pool.stats().errors == 0
    assert sorted(done) == list(range(n)), seed.replay


async def test_a_timeout_storm_over_a_deep_queue_costs_each_call_the_same(
    autojump_clock: Clock,
) -> None:
    n = scaled(20_000, cap=100_000)
    async with open_fake_pool(Storm, size=1, queue_timeout=10) as pool:
        timed_out = 0

        async def one(i: int) -> None:
            nonlocal timed_out
            with pytest.raises(sp.QueueTimeout):
                await pool.execute("echo", {"value": i})
            timed_out += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.execute, "sleep", {"seconds": 60})
            await trio.testing.wait_all_tasks_blocked()
            start = time.process_time()
            for i in range(n):
                nursery.start_soon(one, i)
            await trio.testing.wait_all_tasks_blocked()
            queueing = time.process_time() - start
            assert pool.stats().queued == n
            await trio.sleep(9.999)
            start = time.process_time()
            await trio.sleep(0.002)  # every queue_timeout ends here
            await trio.testing.wait_all_tasks_blocked()
            storm = time.process_time() - start
            assert timed_out == n and pool.stats().queued == 0
            nursery.cancel_scope.cancel()
    print(f"{n} calls: queued in {queueing:.2f} s CPU, timed out in {storm:.2f} s CPU")
    # Both cost about the same per call; a pass over the queue per timeout made the storm
    # cost over three times as much as queueing (and more, the deeper the queue).
    assert storm < 2 * queueing, f"queued in {queueing:.3f} s, timed out in {storm:.3f} s"


async def test_a_queued_call_costs_the_pool_under_a_kib(autojump_clock: Clock) -> None:
    n = scaled(20_000, cap=100_000)
    ours = [tracemalloc.Filter(True, "*snakepit_trio*")]
    async with open_fake_pool(Storm, size=1, worker_capacity=1, prefetch=0) as pool:

        async def one(i: int) -> None:
            assert await pool.execute("echo", {"value": i}) == i

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.execute, "sleep", {"seconds": 60})
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.take_snapshot().filter_traces(ours)
                for i in range(n):
                    nursery.start_soon(one, i)
                await trio.testing.wait_all_tasks_blocked()
                assert pool.stats().queued == n and pool.stats().in_flight == 1
                gc.collect()
                after = tracemalloc.take_snapshot().filter_traces(ours)
            finally:
                tracemalloc.stop()
            per_call = sum(s.size_diff for s in after.compare_to(before, "filename")) / n
            del before, after
        assert pool.stats().errors == 0 and pool.stats().queued == 0
    print(f"{n} queued calls: {per_call:,.0f} bytes each, allocated by the pool's own code")
    assert per_call < 1024, f"{per_call:.0f} bytes per queued call"
