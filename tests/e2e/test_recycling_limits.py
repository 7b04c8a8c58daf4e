"""End-to-end (real workers): recycling limits are exact.

``max_requests`` is a hard limit per worker; ``max_memory_mb`` is checked after each call;
a limit below what one call needs is warned about once instead of recycling forever.
"""

from __future__ import annotations

import collections
import logging

import pytest
import trio

import snakepit_trio as sp

LEAKY = "tests.adapters.leaky:Leaky"


async def test_max_requests_is_a_hard_limit_per_worker() -> None:
    with trio.fail_after(120):
        async with sp.open_pool(LEAKY, size=2, max_requests=5) as pool:
            served = collections.Counter([await pool.execute("pid") for _ in range(30)])
            out: list[int] = []

            async def caller() -> None:
                for _ in range(5):
                    out.append(await pool.execute("pid"))

            async with trio.open_nursery() as nursery:
                for _ in range(6):
                    nursery.start_soon(caller)
            served.update(out)
            stats = pool.stats()
    assert sum(served.values()) == 60 and stats.errors == 0 and stats.crashes == 0
    assert max(served.values()) <= 5, served
    assert len(served) >= 12


async def test_max_memory_is_checked_after_each_call() -> None:
    with trio.fail_after(120):
        async with sp.open_pool(LEAKY, size=1, max_memory_mb=150) as pool:
            seen = [await pool.execute("leak", {"megabytes": 40}) for _ in range(12)]
            stats = pool.stats()
    # Each call reports its worker's RSS as it ends: a worker is replaced after the call
    # that crossed the limit, so none gets far past it (back to back, it used to reach
    # ~450 MB with a 150 MB limit).
    assert max(seen) < 150 + 2 * 40, seen
    assert stats.recycles >= 2 and stats.errors == 0


async def test_a_limit_below_one_calls_needs_warns_instead_of_recycling_forever(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio")
    with trio.fail_after(120):
        async with sp.open_pool(LEAKY, size=1) as probe:
            [worker] = probe.workers()
            assert worker.rss is not None
            fresh_mb = worker.rss / 2**20
        # Under the limit when it starts, over it after any call.
        async with sp.open_pool(LEAKY, size=1, max_memory_mb=fresh_mb + 30) as pool:
            for _ in range(20):
                await pool.execute("leak", {"megabytes": 60})
            stats = pool.stats()
    # One warning: the limit is below what a call needs (or, if a worker's RSS at start
    # already varies past it, that it is over the limit before serving any call).
    warnings = [r for r in caplog.records if "max_memory_mb" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert stats.recycles <= 3 and stats.errors == 0
