"""Pool layer: the examples' adapters, tested in memory as a user would test their own."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from examples.demo_adapter import TextTools
from examples.memory_adapter import Memory
from examples.report_adapter import Reports
from examples.service_adapter import Service
from snakepit_trio.testing import faults, open_fake_pool

Clock = trio.testing.MockClock


async def test_text_tools(autojump_clock: Clock) -> None:
    async with open_fake_pool(TextTools, size=2) as pool:
        counted = await pool.execute("word_count", {"text": "the cat and the dog and a cat"})
        assert counted["top"] == [["cat", 2], ["dog", 1]]
        squares = {}

        async def square(x: int) -> None:
            squares[x] = await pool.execute("slow_square", {"x": x})

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for x in range(8):
                nursery.start_soon(square, x)
        assert squares == {x: x * x for x in range(8)}
        # Two workers share the 8 calls of 0.05 s (how evenly depends on prefetch).
        assert 0.2 - 1e-9 <= trio.current_time() - start < 0.4
        with pytest.raises(sp.RemoteError, match="ZeroDivisionError"):
            await pool.execute("divide", {"a": 1, "b": 0})


async def test_each_session_keeps_its_own_history(autojump_clock: Clock) -> None:
    async with open_fake_pool(Memory, size=2) as pool:
        async with pool.session() as alice, pool.session() as bob:
            await alice.execute("remember", {"message": "hi"})
            await bob.execute("remember", {"message": "hello"})
            got = await alice.execute("remember", {"message": "how are you?"})
            assert got["history"] == ["hi", "how are you?"]
        with pytest.raises(sp.RemoteError, match="inside a session"):
            await pool.execute("remember", {"message": "lost"})


async def test_a_strict_session_is_lost_with_its_worker(autojump_clock: Clock) -> None:
    async with open_fake_pool(Memory, size=2) as pool, pool.session() as session:
        await session.execute("remember", {"message": "hi"})
        assert session.worker_id is not None
        faults(pool).crash(session.worker_id)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(sp.SessionLost):
            await session.execute("remember", {"message": "again"})


async def test_reports_stream_with_progress(autojump_clock: Clock) -> None:
    seen: list[sp.Progress] = []
    async with (
        open_fake_pool(Reports, size=1) as pool,
        pool.stream("summarise", {"rows": 20}, on_progress=seen.append) as rows,
    ):
        got = [row async for row in rows]
    assert [r["row"] for r in got] == list(range(20))
    assert seen[-1].fraction == 1.0


async def test_the_service_example_retries_and_breaks(autojump_clock: Clock) -> None:
    async with open_fake_pool(Service, size=1) as pool:
        policy = sp.RetryPolicy(initial=1, jitter="none", retry_on="ConnectionError")
        start = trio.current_time()
        found = await pool.execute("lookup", {"key": "k"}, retry=policy)
        assert found == {"key": "k", "length": 1} and trio.current_time() - start == 3
        breaker = sp.CircuitBreaker(failure_threshold=2, reset_timeout=5)
        for _ in range(2):
            with pytest.raises(sp.RemoteError):
                await pool.execute("down", breaker=breaker)
        with pytest.raises(sp.CircuitOpen):
            await pool.execute("ping", breaker=breaker)
        await trio.sleep(5)
        assert await pool.execute("ping", breaker=breaker) == "pong"
        async with pool.map("features", [{"text": "a b"}] * 10, chunksize=4) as results:
            assert [r async for r in results] == [[3, 1, (97 + 32 + 98) % 97]] * 10
