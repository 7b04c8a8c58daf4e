"""Pool layer (virtual clock): recycling (``max_requests``) under bursts and cancel storms.

``max_requests`` replaces a worker ahead of time, so a slot briefly has two workers: the
one going and its replacement. Never more: a replacement that starts serving must not
start its own replacement at once, or a burst of calls turns a pool of ``size`` workers
into one of as many workers as there are calls.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import open_fake_pool
from tests.adapters.adversarial import Storm
from tests.adversarial.conftest import Seed, scaled

Clock = trio.testing.MockClock


async def _watch_size(pool: sp.Pool, peak: list[int]) -> None:
    """Record the most workers alive at once, every virtual millisecond (a measurement)."""
    while True:
        peak[0] = max(peak[0], len(pool.workers()))
        await trio.sleep(0.001)  # virtual: free unless the pool runs


@pytest.mark.parametrize("max_requests", [2, 7, 50])
async def test_a_burst_never_grows_the_pool_past_one_replacement_per_worker(
    autojump_clock: Clock, seed: Seed, max_requests: int
) -> None:
    size = 2
    calls = scaled(10) * max_requests
    peak = [0]
    async with open_fake_pool(Storm, size=size, max_requests=max_requests) as pool:
        async with trio.open_nursery() as watch:
            watch.start_soon(_watch_size, pool, peak)
            async with trio.open_nursery() as nursery:
                for i in range(calls):
                    seconds = seed.rng.choice([0.001, 0.01, 0.1])
                    nursery.start_soon(pool.execute, "sleep", {"seconds": seconds, "token": str(i)})
            watch.cancel_scope.cancel()
        stats = pool.stats()
    assert stats.errors == 0, seed.replay
    assert stats.recycles >= calls // max_requests - size, seed.replay
    # Each worker is sent at most max_requests calls: this many workers served them.
    assert peak[0] <= 2 * size, f"{seed.replay}: {peak[0]} workers alive at once"


async def test_a_worker_kept_by_a_strict_session_does_not_stall_its_slot(
    autojump_clock: Clock,
) -> None:
    """A worker at max_requests lingers while a strict session is bound to it; its
    successors must still be replaced in turn, or every other call waits for the session."""
    async with open_fake_pool(Storm, size=1, max_requests=3) as pool:
        async with pool.session(affinity="strict") as session:
            first = await session.execute("serial")
            with trio.fail_after(60):
                served = [await pool.execute("serial") for _ in range(30)]
            assert await session.execute("serial") == first  # still on its worker
        assert pool.stats().errors == 0
    assert len(set(served)) >= 10  # at most 3 calls each
