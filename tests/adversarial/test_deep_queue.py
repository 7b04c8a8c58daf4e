"""End-to-end (real workers): 20,000 calls queued behind a blocked pool, then released.

Both workers are held by calls that run until the test says so; 20,000 calls queue
behind them. Measured: the host's memory per queued call (tracemalloc, Python's own
allocations; RSS printed beside it). Then the pool is released: every queued call runs
and returns its own result.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import psutil
import trio

import snakepit_trio as sp
from tests.adversarial.conftest import SCALE, scaled
from tests.helpers import wait_for

STORM = "tests.adapters.adversarial:Storm"
KB = 1024
LIMIT = 20 * KB  # bytes per queued call, generous: a call's task, handle and arguments


async def test_twenty_thousand_queued_calls_cost_little_and_all_complete(tmp_path: Path) -> None:
    n = scaled(20_000, cap=100_000)
    release = tmp_path / "release"
    results: list[int] = []
    with trio.fail_after(120 * SCALE):
        async with sp.open_pool(STORM, size=2) as pool:

            async def one(i: int) -> None:
                results.append(await pool.execute("echo", {"value": i}))

            async with trio.open_nursery() as nursery:
                for _ in range(2):
                    nursery.start_soon(pool.execute, "stuck_until", {"path": str(release)})
                await wait_for(lambda: pool.stats().in_flight == 2)
                rss_before = psutil.Process().memory_info().rss
                tracemalloc.start()
                try:
                    before = tracemalloc.get_traced_memory()[0]
                    for i in range(n):
                        nursery.start_soon(one, i)
                    await wait_for(lambda: pool.stats().queued == n, timeout=60 * SCALE)
                    queued = tracemalloc.get_traced_memory()[0] - before
                finally:
                    tracemalloc.stop()
                rss = psutil.Process().memory_info().rss - rss_before
                assert pool.stats().in_flight == 2  # nothing got past the held workers
                release.touch()
            stats = pool.stats()
    per_call = queued / n
    print(
        f"{n} queued calls: {queued / KB / KB:.1f} MiB traced ({per_call / KB:.2f} KiB each), "
        f"RSS +{rss / KB / KB:.1f} MiB ({rss / n / KB:.2f} KiB each)"
    )
    assert sorted(results) == list(range(n))
    assert stats.errors == 0 and stats.queued == 0 and stats.in_flight == 0
    assert per_call < LIMIT, f"{per_call:.0f} bytes per queued call"
