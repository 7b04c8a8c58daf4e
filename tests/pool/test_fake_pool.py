"""Pool layer: snakepit_trio.testing gives the semantics of a real pool, in memory."""

from __future__ import annotations

import os
import time
from typing import Any

import psutil
import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import faults, open_fake_pool
from tests.pool.adapters import EVENTS, FailsToStart, Tools


async def test_it_starts_no_process(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a fake pool started a process")

    monkeypatch.setattr(trio.lowlevel, "open_process", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)
    children = set(psutil.Process().children(recursive=True))
    async with open_fake_pool(Tools, size=3) as pool:
        assert await pool.execute("echo", {"value": 1}) == 1
        assert set(psutil.Process().children(recursive=True)) == children
        assert {w.pid for w in pool.workers()} == {os.getpid()}
        assert pool.stats().workers == 3


async def test_a_60_s_timeout_takes_no_real_time(autojump_clock: trio.testing.MockClock) -> None:
    real = time.perf_counter()
    async with open_fake_pool(Tools, size=1, timeout=60) as pool:
        start = trio.current_time()
        with pytest.raises(sp.RequestTimeout, match="timeout=60s"):
            await pool.execute("sleep", {"seconds": 3600})
        assert trio.current_time() - start == 60
    assert time.perf_counter() - real < 10  # in-process; virtual time did the waiting


async def test_the_same_checks_and_round_trip_as_a_real_pool(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_pool("tests.pool.adapters:Tools", size=1) as pool:
        assert await pool.execute("echo", {"value": {"a": (1, 2)}}) == {"a": [1, 2]}
        with pytest.raises(sp.SerializationError, match="set"):
            await pool.execute("echo", {"value": {1, 2}})
        with pytest.raises(sp.UnknownTool, match="nope"):
            await pool.execute("nope")
        with pytest.raises(sp.InvalidArguments, match="unexpected"):
            await pool.execute("echo", {"valeu": 1})
        with pytest.raises(sp.InvalidArguments, match="streams"):
            await pool.execute("count", {"n": 1})
        with pytest.raises(sp.RemoteError, match="bad input") as info:
            await pool.execute("fail", {"message": "bad input"})
        assert info.value.remote_type == "ValueError"
        assert [t.name for t in pool.tools()][:3] == ["calls_here", "count", "echo"]


async def test_a_failed_initialize_raises_from_open_fake_pool(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(sp.WorkerStartError, match="no model at /nowhere"):
        async with open_fake_pool(FailsToStart, size=2):
            raise AssertionError("not reached")  # pragma: no cover


async def test_bad_adapters_and_options_are_named(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(TypeError, match="Adapter subclass"):
        async with open_fake_pool(object, size=1):  # type: ignore[arg-type]
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="cannot import adapter module 'no_such_module'"):
        async with open_fake_pool("no_such_module:X", size=1):
            pass  # pragma: no cover
    with pytest.raises(TypeError, match="sise"):
        async with open_fake_pool(Tools, size=1, sise=2):
            pass  # pragma: no cover


async def test_streams_keep_to_their_credit(autojump_clock: trio.testing.MockClock) -> None:
    EVENTS.clear()
    async with open_fake_pool(Tools, size=1) as pool:
        async with pool.stream("count", {"n": 100}, window=4) as chunks:
            first = await chunks.__anext__()
            await trio.testing.wait_all_tasks_blocked()
            # The consumer took one chunk: the worker ran at most a window ahead of it.
            assert first == 0
            assert len([e for e in EVENTS if e[0] == "produced"]) <= 4
            rest = [c async for c in chunks]
        assert rest == list(range(1, 100))


async def test_leaving_a_stream_closes_its_generator_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    EVENTS.clear()
    async with open_fake_pool(Tools, size=1) as pool:
        async with pool.stream("ticks", {"n": 100, "every": 1.0}) as chunks:
            async for chunk in chunks:
                if chunk == 2:
                    break
        left = trio.current_time()
        await pool.execute("echo")  # the worker's slot is free again
        assert ("ticks closed", left) in EVENTS


async def test_progress_reaches_the_caller(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[sp.Progress] = []
    async with open_fake_pool(Tools, size=1) as pool:
        assert await pool.execute("report", {"steps": 3}, on_progress=seen.append) == 3
    assert [(p.done, p.total, p.message) for p in seen] == [
        (1, 3, "step 1"),
        (2, 3, "step 2"),
        (3, 3, "step 3"),
    ]
    assert seen[-1].fraction == 1.0


async def test_tools_see_the_deadline_on_the_virtual_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        assert await pool.execute("remaining", timeout=30) == 30
        assert await pool.execute("remaining") is None


async def test_sessions_keep_to_their_worker_and_end_there(
    autojump_clock: trio.testing.MockClock,
) -> None:
    EVENTS.clear()
    async with open_fake_pool(Tools, size=3) as pool:
        async with pool.session("s1") as session:
            for _ in range(5):
                await session.execute("echo")
            assert await session.execute("calls_here") == 5
        await trio.testing.wait_all_tasks_blocked()
        assert ("session end", "s1") in EVENTS


async def test_a_crash_fails_the_calls_on_that_worker_and_it_is_replaced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_pool(Tools, size=2) as pool:
        crashed: list[sp.WorkerCrashed] = []

        async def victim() -> None:
            with pytest.raises(sp.WorkerCrashed) as info:
                await pool.execute("sleep", {"seconds": 30})
            crashed.append(info.value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(victim)
            await trio.testing.wait_all_tasks_blocked()
            worker = faults(pool).crash(exit_code=7)
        [error] = crashed
        assert (error.worker_id, error.exit_code, error.cause) == (worker, 7, "exit")
        # An idempotent call runs again, on the other worker.
        results = []

        async def again() -> None:
            results.append(await pool.execute("sleep", {"seconds": 5}, idempotent=True))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(again)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            faults(pool).crash(signal=9)
        assert results == ["slept"]
        # It ran again from the start on the first worker to come up: the first crash's
        # replacement, after the first restart delay.
        assert trio.current_time() - start == sp.RestartPolicy().initial + 5
        assert pool.stats().crashes == 2


async def test_a_hung_worker_is_found_by_heartbeats(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_pool(Tools, size=2, heartbeat_interval=0.5, heartbeat_timeout=2) as pool:
        async with trio.open_nursery() as nursery:

            async def victim() -> None:
                with pytest.raises(sp.WorkerCrashed, match="heartbeat_timeout=2s") as info:
                    await pool.execute("sleep", {"seconds": 30})
                assert info.value.cause == "unresponsive"

            nursery.start_soon(victim)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            faults(pool).hang()
        # Found on the first heartbeat tick (every interval / 2) after 2 s of silence.
        assert 2.0 <= trio.current_time() - start <= 2.25


async def test_a_delay_holds_every_answer(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_pool(Tools, size=1, heartbeat_timeout=None) as pool:
        faults(pool).delay(3.0)
        start = trio.current_time()
        assert await pool.execute("echo", {"value": 1}) == 1
        assert trio.current_time() - start == 3.0
        faults(pool).delay(0)
        start = trio.current_time()
        await pool.execute("echo")
        assert trio.current_time() == start
        with pytest.raises(ValueError, match=">= 0"):
            faults(pool).delay(-1)


async def test_faults_name_what_is_wrong(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        with pytest.raises(LookupError, match="no live worker 'ghost'"):
            faults(pool).crash("ghost")
        hung = faults(pool).hang()
        faults(pool).resume(hung)
        assert await pool.execute("echo", {"value": 2}) == 2


async def test_function_tools_are_served_as_in_a_real_pool(
    autojump_clock: trio.testing.MockClock,
) -> None:
    entries = ["tests.adapters.functions:score", "tests.adapters.functions:acount"]
    async with open_fake_pool(tools=entries, size=1) as pool:
        assert await pool.execute("score", {"x": 2, "weight": 1.5}) == 3.0
        async with pool.stream("acount", {"n": 3}) as chunks:
            assert [c async for c in chunks] == [0, 1, 2]
        assert {t.name for t in pool.tools()} == {"score", "acount"}
    async with open_fake_pool(Tools, tools=entries[:1], size=1) as pool:
        assert await pool.execute("echo", {"value": 1}) == 1
        assert await pool.execute("score", {"x": 2}) == 2
    with pytest.raises(
        ValueError, match=r"tools entry 'tests\.adapters\.functions:Scorer' is a class"
    ):
        async with open_fake_pool(tools=["tests.adapters.functions:Scorer"]):
            raise AssertionError("open_fake_pool must not yield")  # pragma: no cover
    with pytest.raises(sp.WorkerStartError, match="makes a tool named 'score', and so does"):
        async with open_fake_pool(tools=[*entries[:1], "tests.adapters.functions:score_again"]):
            raise AssertionError("open_fake_pool must not yield")  # pragma: no cover
