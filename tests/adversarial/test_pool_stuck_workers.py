"""Pool layer (virtual clock): a stuck call never takes calls that had not started with it.

With ``kill_on_cancel``, a worker whose cancelled call runs on past ``cancel_grace`` is
killed. Calls prefetched behind that call had not started: they are taken back (revoked)
before the kill and run elsewhere, however short ``cancel_grace`` is (before, with a grace
shorter than the watchdog's tick, they failed with the killed worker). A cancelled call
that does stop before the kill leaves its worker alive: the kill is called off.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import open_fake_pool
from tests.adapters.adversarial import STARTED, Storm

Clock = trio.testing.MockClock


async def warm_up(pool: sp.Pool) -> None:
    """Short calls on every worker, so that the pool prefetches onto them."""
    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(pool.execute, "echo", {"value": 1})


@pytest.mark.parametrize("cancel_grace", [0.0, 0.01, 0.5])
async def test_calls_waiting_behind_a_stuck_call_run_elsewhere_when_it_is_killed(
    autojump_clock: Clock, cancel_grace: float
) -> None:
    STARTED.clear()
    async with open_fake_pool(
        Storm, size=1, kill_on_cancel=True, cancel_grace=cancel_grace
    ) as pool:
        await warm_up(pool)
        [first] = pool.workers()
        results: list[tuple[int, str]] = []

        async def short(i: int) -> None:
            # An async tool: it waits in the worker for the slot the stuck call holds.
            got = await pool.execute("sleep", {"seconds": 0.001, "token": f"short-{i}"})
            results.append((i, got))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_times_out, pool)
            # Just before it times out (0.5 s), too late for the watchdog to see a stall.
            await trio.sleep(0.49)
            for i in range(5):
                nursery.start_soon(short, i)
            await trio.testing.wait_all_tasks_blocked()
            [worker] = pool.workers()
            assert len(worker.calls) == 6  # prefetched behind the stuck call
        assert sorted(results) == [(i, "slept") for i in range(5)]
        assert all(STARTED[f"short-{i}"] == 1 for i in range(5))
        stats = pool.stats()
        assert (stats.crashes, stats.errors) == (1, 1)  # the kill; the timed out call
        assert first.id not in {w.id for w in pool.workers()}


async def _times_out(pool: sp.Pool, seconds: float = 60, timeout: float = 0.5) -> None:
    with pytest.raises(sp.RequestTimeout):
        await pool.execute("stubborn", {"seconds": seconds}, timeout=timeout)


async def test_a_stuck_call_that_ends_before_its_kill_calls_the_kill_off(
    autojump_clock: Clock,
) -> None:
    """The kill waits for the worker to give back calls that had not started; a call it
    runs never answers, so it waits up to KILL_WAIT. If the stuck call ends meanwhile, the
    worker serves on: a call sent to it since must not fail with a kill meant for another."""
    async with open_fake_pool(
        Storm, size=1, worker_capacity=2, kill_on_cancel=True, cancel_grace=0.1
    ) as pool:
        [worker] = pool.workers()
        async with trio.open_nursery() as nursery:
            # Ignores its cancel (at 0.1) until 0.3: overdue at 0.2, while a call runs beside.
            nursery.start_soon(_times_out, pool, 0.3, 0.1)
            nursery.start_soon(_sleeps, pool, 1.0)
            await trio.sleep(0.35)
            assert [c.tool for c in pool.workers()[0].calls] == ["sleep"]
            await _sleeps(pool, 0.5)  # sent once the stuck call had ended
        assert [w.id for w in pool.workers()] == [worker.id]
        assert pool.stats().crashes == 0


async def _sleeps(pool: sp.Pool, seconds: float) -> None:
    assert await pool.execute("sleep", {"seconds": seconds}) == "slept"
