"""End-to-end (real workers): recycling by max_requests, max_age and max_memory_mb."""

from __future__ import annotations

import collections
import logging

import pytest
import trio

import snakepit_trio as sp
from tests.helpers import wait_for

ECHO = "tests.adapters.basic:Echo"


async def test_max_requests_recycles_without_failing_a_call() -> None:
    served: collections.Counter[int] = collections.Counter()
    with trio.fail_after(120):
        async with sp.open_pool(ECHO, size=2, max_requests=100) as pool:

            async def caller(n: int) -> None:
                for _ in range(n):
                    served[await pool.execute("pid")] += 1

            async with trio.open_nursery() as nursery:
                for _ in range(50):
                    nursery.start_soon(caller, 200)  # 10,000 calls, 50 in flight
            stats = pool.stats()
    assert stats.errors == 0 and stats.crashes == 0 and stats.requests == 10_000
    # A hard limit: no worker served more than max_requests, so at least 100 workers
    # served. (At this rate a worker serves its 100 calls faster than one starts, so calls
    # wait for replacements now and then; none fails.)
    assert max(served.values()) <= 100
    assert len(served) >= 100 and stats.recycles >= 100


async def test_max_age_recycles_idle_workers() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, max_age=0.5) as pool:
            [first] = pool.workers()
            await wait_for(lambda: pool.stats().recycles >= 1 and pool.stats().workers == 1)
            await wait_for(lambda: first.pid not in {w.pid for w in pool.workers()})
            assert await pool.execute("add", {"a": 1}) == 2


async def test_max_memory_recycles_after_the_call_that_crossed_it() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, max_memory_mb=200) as pool:
            [first] = pool.workers()
            assert await pool.execute("grow", {"megabytes": 300}) == 300 * 2**20
            await wait_for(lambda: pool.stats().recycles == 1 and pool.stats().workers == 1)
            await wait_for(lambda: first.pid not in {w.pid for w in pool.workers()})
            assert pool.stats().crashes == 0 and pool.stats().recycles == 1


async def test_a_fresh_worker_over_the_memory_limit_warns_instead_of_looping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio")
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, max_memory_mb=1) as pool:
            await wait_for(lambda: any("max_memory_mb" in r.getMessage() for r in caplog.records))
            assert pool.stats().recycles == 0
            assert await pool.execute("add", {"a": 1}) == 2


async def test_strict_sessions_hold_off_recycling_until_they_close() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, max_requests=3) as pool:
            async with pool.session() as session:
                # Past max_requests, but the session's state must live: its calls stay on
                # its worker, while other calls go to the replacement started meanwhile.
                pids = {await session.execute("pid") for _ in range(6)}
                assert len(pids) == 1 and session.worker_id is not None and not session.lost
                others = {await pool.execute("pid") for _ in range(2)}
                assert not others & pids
            [old] = pids  # once its session is closed, it stops
            await wait_for(lambda: old not in {w.pid for w in pool.workers()})
            assert pool.stats().crashes == 0 and pool.stats().errors == 0
