"""End-to-end (real workers): thousands of sessions opened, used and closed or expired.

Sessions come and go a hundred at a time; half are closed, half left to expire (a short
ttl). Afterwards the pool holds none, ``on_session_end`` ran once per session in the
workers (they kept up), and the host's Python memory (tracemalloc, after a warm-up
round) has not grown with the number of sessions.
"""

from __future__ import annotations

import gc
import tracemalloc

import trio

import snakepit_trio as sp
from tests.adversarial.conftest import Seed, scaled
from tests.helpers import wait_for

SESSIONS = "tests.adapters.adversarial:Sessions"
WAVE = 100
KB = 1024


async def _wave(pool: sp.Pool, seed: Seed, first: int) -> None:
    async def one(i: int) -> None:
        expire = seed.rng.random() < 0.5
        session = await pool.open_session(f"s{i}", ttl=0.05 if expire else None)
        assert isinstance(await session.execute("pid"), int)
        if not expire:
            session.close()

    async with trio.open_nursery() as nursery:
        for i in range(first, first + WAVE):
            nursery.start_soon(one, i)
    await wait_for(lambda: pool.stats().sessions == 0)  # the rest expired


async def _ended_in_workers(pool: sp.Pool) -> dict[int, int]:
    """How many sessions ended in each worker, by pid (each answers a call of its own)."""
    counts: dict[int, int] = {}
    pids = {w.pid for w in pool.workers()}
    while set(counts) != pids:
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(_ask, pool, counts)
    return counts


async def _ask(pool: sp.Pool, counts: dict[int, int]) -> None:
    pid, ended = await pool.execute("ended_here")
    counts[pid] = max(counts.get(pid, 0), ended)


async def test_thousands_of_sessions_leave_nothing_behind(seed: Seed) -> None:
    waves = scaled(2000) // WAVE
    with trio.fail_after(120 * max(1, waves // 20)):
        async with sp.open_pool(SESSIONS, size=2) as pool:
            await _wave(pool, seed, 0)  # warm-up: caches, first uses
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for w in range(1, waves + 1):
                    await _wave(pool, seed, w * WAVE)
                gc.collect()
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            total = (waves + 1) * WAVE
            assert pool.stats().sessions == 0 and pool.list_sessions() == []
            with trio.fail_after(30):  # every end ran in the workers
                # The counts live in the workers: no event to wait on, so ask again.
                while sum((await _ended_in_workers(pool)).values()) < total:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            assert sum((await _ended_in_workers(pool)).values()) == total
    per_session = grown / (waves * WAVE)
    print(
        f"{waves * WAVE} sessions: host memory grew {grown / KB:.1f} KiB ({per_session:.0f} B each)"
    )
    assert grown < 1024 * KB, f"{seed.replay}: host memory grew {grown / KB:.0f} KiB"
