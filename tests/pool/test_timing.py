"""Pool layer: the engine's timing rules, at exact virtual times.

Each test here is the exact version of a promise the end-to-end tests can only bound
generously across processes: timeouts, queue timeouts, crash notice, kill_on_cancel, drain,
restart backoff, heartbeats, the crash breaker and its probe, session ttl.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import faults, open_fake_pool
from snakepit_trio.testing._launcher import MemoryLauncher
from tests.pool.adapters import EVENTS, ON_START, Tools

Clock = trio.testing.MockClock


class Starts(list[float]):
    """The virtual times at which workers' adapters start; ``next()`` waits for one more."""

    def __init__(self) -> None:
        super().__init__()
        self._seen = trio.Event()

    def __call__(self, now: float) -> None:
        self.append(now)
        self._seen.set()

    async def next(self) -> float:
        """Wait until one more worker has started and is serving; its start time."""
        count = len(self)
        while len(self) == count:
            self._seen = trio.Event()
            await self._seen.wait()
        await trio.testing.wait_all_tasks_blocked()  # it reports ready; no time passes
        return self[-1]


@contextmanager
def worker_starts() -> Iterator[Starts]:
    """Record worker starts while the block runs."""
    starts = Starts()
    ON_START.append(starts)
    try:
        yield starts
    finally:
        ON_START.remove(starts)


async def test_a_crash_ends_its_calls_at_once(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=2) as pool:
        ended: list[float] = []

        async def victim() -> None:
            with pytest.raises(sp.WorkerCrashed):
                await pool.execute("sleep", {"seconds": 20})
            ended.append(trio.current_time())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(victim)
            await trio.sleep(3)
            faults(pool).crash()
        assert ended == [3.0]


async def test_timeouts_count_queue_wait_and_running(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1, prefetch=0) as pool:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.execute, "sleep", {"seconds": 2})
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            with pytest.raises(sp.RequestTimeout) as info:
                await pool.execute("sleep", {"seconds": 30}, timeout=3.0)
            # 2 s queued behind the first call, then 1 s running: 3 s in all.
            assert trio.current_time() - start == 3.0
            assert info.value.started is True
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.execute, "sleep", {"seconds": 10})
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            with pytest.raises(sp.RequestTimeout) as info:
                await pool.execute("echo", timeout=4.0)
            assert trio.current_time() - start == 4.0
            nursery.cancel_scope.cancel()
        assert info.value.started is False  # it never left the queue


async def test_queue_timeout_is_exact(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1, prefetch=0, queue_timeout=0.2) as pool:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.execute, "sleep", {"seconds": 30})
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            with pytest.raises(sp.QueueTimeout):
                await pool.execute("echo")
            assert trio.current_time() - start == 0.2
            nursery.cancel_scope.cancel()
        # Sent before queue_timeout: the rest of its time is the call's own.
        start = trio.current_time()
        assert await pool.execute("sleep", {"seconds": 5}) == "slept"
        assert trio.current_time() - start == 5
        assert pool.stats().queue_timeouts == 1


async def test_kill_on_cancel_replaces_the_worker_after_cancel_grace(autojump_clock: Clock) -> None:
    EVENTS.clear()
    with worker_starts() as starts:
        async with open_fake_pool(Tools, size=1, cancel_grace=0.2) as pool:
            start = trio.current_time()
            with pytest.raises(sp.RequestTimeout):
                await pool.execute("stubborn", {"seconds": 30}, timeout=0.3, kill_on_cancel=True)
            assert trio.current_time() - start == 0.3
            assert await pool.execute("echo", {"value": 1}) == 1  # on the replacement
            assert pool.stats().restarts == 1 and pool.stats().crashes == 1
    # It ignored the cancel at 0.3; killed at 0.5; the replacement started after the first
    # restart delay.
    assert ("ignored cancel", start + 0.3) in EVENTS
    assert starts[1] == pytest.approx(start + 0.5 + sp.RestartPolicy().initial, abs=1e-9)


async def test_stream_timeouts_are_exact(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        start = trio.current_time()
        with pytest.raises(sp.RequestTimeout):
            async with pool.stream("ticks", {"n": 10**6, "every": 0.01}, timeout=0.3) as c:
                async for _ in c:
                    pass
        assert trio.current_time() - start == pytest.approx(0.3, abs=1e-9)
        start = trio.current_time()
        got = []
        with pytest.raises(sp.StreamIdleTimeout):
            async with pool.stream("ticks", {"n": 3, "every": 5.0}, idle_timeout=2.0) as c:
                async for chunk in c:
                    got.append(chunk)
        assert got == [] and trio.current_time() - start == pytest.approx(2.0, abs=1e-9)


async def test_drain_then_grace_bound_the_exit(autojump_clock: Clock) -> None:
    errors: list[BaseException] = []
    async with trio.open_nursery() as outer:
        async with open_fake_pool(Tools, size=1, drain_timeout=0.2, shutdown_grace=0.5) as pool:

            async def call() -> None:
                try:
                    await pool.execute("sleep", {"seconds": 60})
                except sp.SnakepitError as exc:
                    errors.append(exc)

            outer.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
        # drain_timeout for the call to finish, then shutdown_grace for the worker to stop.
        assert trio.current_time() - start == pytest.approx(0.7, abs=1e-9)
    assert len(errors) == 1 and isinstance(errors[0], sp.PoolClosed)


async def test_a_call_that_finishes_while_draining_gets_its_result(autojump_clock: Clock) -> None:
    results: list[str] = []
    async with trio.open_nursery() as outer:
        async with open_fake_pool(Tools, size=1, drain_timeout=10) as pool:

            async def call() -> None:
                results.append(await pool.execute("sleep", {"seconds": 3}))

            outer.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
        assert trio.current_time() - start == 3.0
    assert results == ["slept"]


async def test_restarts_back_off_exponentially_up_to_the_cap(autojump_clock: Clock) -> None:
    policy = sp.RestartPolicy(initial=0.5, factor=2.0, max_delay=3.0, reset_after=100)
    with worker_starts() as starts:
        async with open_fake_pool(Tools, size=1, restart=policy, crash_threshold=None) as pool:
            delays = []
            for _ in range(5):
                crashed = trio.current_time()
                faults(pool).crash()
                delays.append(await starts.next() - crashed)
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_a_silent_worker_gets_no_new_calls_then_is_replaced(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=2, heartbeat_interval=0.5, heartbeat_timeout=2.0) as pool:
        hung = faults(pool).hang()
        start = trio.current_time()
        await trio.sleep(1.5)  # silent for 2 intervals: suspended, not yet replaced
        [info] = [w for w in pool.workers() if w.id == hung]
        assert info.silent >= 1.0
        healthy = await pool.execute("whoami")
        for _ in range(5):  # every new call goes to the other worker, none waits
            call_start = trio.current_time()
            assert await pool.execute("whoami") == healthy
            assert trio.current_time() == call_start
        await trio.sleep(1.0)
        assert hung not in {w.id for w in pool.workers()}
        assert pool.stats().crashes == 1
        # Replaced on the first heartbeat tick after heartbeat_timeout of silence.
        assert start + 2.0 <= trio.current_time()


async def test_a_worker_slow_to_connect_is_silent_only_from_its_welcome(
    autojump_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A launcher may take longer than heartbeat_timeout to place and reach a worker (a
    Ray actor on a busy cluster): its silence counts from READY, not from its spawn."""
    connect = MemoryLauncher.connect

    async def placed_far_away(self: MemoryLauncher, *args: Any) -> Any:
        await trio.sleep(10)
        return await connect(self, *args)

    monkeypatch.setattr(MemoryLauncher, "connect", placed_far_away)
    async with open_fake_pool(Tools, size=1, heartbeat_interval=0.5, heartbeat_timeout=2.0) as pool:
        ready = trio.current_time()
        await trio.sleep(5)  # heartbeats answered: nothing is replaced
        assert pool.stats().crashes == 0
        assert await pool.execute("echo", {"value": 1}) == 1
        assert ready >= 10


async def test_the_crash_breaker_opens_fails_fast_and_heals_with_a_probe(
    autojump_clock: Clock,
) -> None:
    breaker = {"crash_threshold": 3, "crash_window": 10, "probe_after": 5}
    with worker_starts() as starts:
        async with open_fake_pool(
            Tools, size=1, restart=sp.RestartPolicy(initial=0.1, factor=1), **breaker
        ) as pool:
            for _ in range(3):
                faults(pool).crash()
                await trio.testing.wait_all_tasks_blocked()  # its end is noticed
                if pool.stats().health == "healthy":
                    await starts.next()
            last_crash = trio.current_time()
            assert pool.stats().health == "unhealthy"
            with trio.testing.assert_no_checkpoints(), pytest.raises(sp.PoolUnhealthy) as info:
                await pool.execute("echo")
            assert info.value.crashes == 3 and info.value.retry_in == 5.0
            await trio.sleep(4.9)
            with pytest.raises(sp.PoolUnhealthy) as info:
                await pool.execute("echo")
            assert info.value.retry_in == pytest.approx(0.1, abs=1e-9)
            await trio.sleep(0.1)
            assert trio.current_time() == last_crash + 5.0
            assert await pool.execute("echo", {"value": "probe"}) == "probe"
            assert pool.stats().health == "healthy"


async def test_idle_sessions_expire_after_their_ttl(autojump_clock: Clock) -> None:
    EVENTS.clear()
    async with open_fake_pool(Tools, size=1) as pool:
        session = await pool.open_session("s", ttl=30)
        await session.execute("sleep", {"seconds": 10})
        last_used = trio.current_time()
        await trio.sleep(29)
        assert pool.get_session("s") is not None
        await trio.sleep(2)
        assert pool.get_session("s") is None
        with pytest.raises(sp.SessionLost, match="closed or expired"):
            await session.execute("echo")
    assert ("session end at", last_used + 30) in EVENTS
