"""End-to-end (real worker processes): map, as_completed and execute_batch. What the tools
saw (calls running at once, starts and cancels) is kept in files the test reads.

Every wait is bounded by trio.fail_after; tests wait for files and results, never for time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

import snakepit_trio as sp
from tests.helpers import wait_for

FLAKY = "tests.adapters.flaky:Flaky"


def lines(log: Path, kind: str) -> list[int]:
    if not log.exists():
        return []
    return sorted(int(x.split()[1]) for x in log.read_text().splitlines() if x.startswith(kind))


async def test_map_runs_at_most_max_concurrency_calls_at_once(tmp_path: Path) -> None:
    gauge = tmp_path / "gauge"
    items = [{"gauge": str(gauge), "value": i, "seconds": 0.005} for i in range(40)]
    with trio.fail_after(60):
        async with (
            sp.open_pool(FLAKY, size=2, worker_capacity=3) as pool,
            pool.map("gauge", items, max_concurrency=3) as results,
        ):
            assert [r async for r in results] == list(range(40))
    now, peak = (int(x) for x in gauge.read_text().split())
    assert now == 0 and 1 <= peak <= 3


async def test_ordered_and_unordered_results(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2) as pool:
            async with pool.map("square", [{"x": x} for x in range(50)]) as results:
                assert [r async for r in results] == [x * x for x in range(50)]
            # The first call waits for a file; unordered, the others come before it.
            items = [{"value": "first", "path": str(release)}]
            items += [{"value": i} for i in range(5)]
            got: list[Any] = []
            async with pool.map("release_wait", items, ordered=False) as results:
                async for r in results:
                    got.append(r)
                    if len(got) == 5:
                        release.touch()
            assert got[5] == "first" and sorted(got[:5]) == list(range(5))


async def test_an_endless_async_input_is_read_as_fast_as_it_is_consumed() -> None:
    produced = 0

    async def endless() -> AsyncIterator[dict[str, int]]:
        nonlocal produced
        while True:
            produced += 1
            yield {"x": produced}

    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2) as pool:
            got = []
            async with (
                contextlib.aclosing(endless()) as source,
                pool.map("square", source, max_concurrency=4) as results,
            ):
                async for r in results:
                    got.append(r)
                    if len(got) == 10:
                        break
            assert got == [x * x for x in range(1, 11)]
            assert produced <= 10 + 2 * 4
            await wait_for(lambda: pool.stats().in_flight == 0)


async def test_cancelling_the_consumer_cancels_the_calls_in_flight(tmp_path: Path) -> None:
    log = tmp_path / "log"
    items = [{"log": str(log), "i": i} for i in range(4)]
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2, worker_capacity=2) as pool:
            with trio.CancelScope() as scope:
                async with pool.map("logged", items, max_concurrency=4) as results:
                    await wait_for(lambda: len(lines(log, "started")) == 4)
                    scope.cancel()
                    async for _ in results:
                        pytest.fail("no call finished")
            assert scope.cancelled_caught
            await wait_for(lambda: lines(log, "cancelled") == [0, 1, 2, 3])
            await wait_for(lambda: pool.stats().in_flight == 0)


async def test_the_first_failure_cancels_the_rest_and_is_raised_as_itself(tmp_path: Path) -> None:
    log = tmp_path / "log"
    calls: list[tuple[str, dict[str, Any]]] = [
        ("logged", {"log": str(log), "i": i}) for i in range(3)
    ]
    calls.append(("fail_once_started", {"log": str(log), "n": 3}))
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2, worker_capacity=2) as pool:
            with pytest.raises(sp.RemoteError) as info:
                await pool.execute_batch(calls)
            assert type(info.value) is sp.RemoteError
            assert info.value.remote_message == "3 calls started"
            await wait_for(lambda: lines(log, "cancelled") == [0, 1, 2])
            assert lines(log, "finished") == []


async def test_as_completed_and_a_session_map_on_real_workers() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=3) as pool:
            calls = [("square", {"x": 3}), ("square", {"x": -1}), ("ok", {"value": "v"})]
            async with pool.as_completed(calls, return_exceptions=True) as done:
                got = {tool_args[0] + str(tool_args[1]): r async for tool_args, r in done}
            assert got["square{'x': 3}"] == 9 and got["ok{'value': 'v'}"] == "v"
            assert isinstance(got["square{'x': -1}"], sp.RemoteError)
            async with pool.session() as session, session.map("pid", [None] * 8) as pids:
                assert len({p async for p in pids}) == 1


async def test_chunks_on_real_workers(tmp_path: Path) -> None:
    gauge = tmp_path / "gauge"
    items = [{"gauge": str(gauge), "value": i, "seconds": 0.001} for i in range(200)]
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2) as pool:
            async with pool.map("gauge", items, chunksize=16, max_concurrency=2) as results:
                assert [r async for r in results] == list(range(200))
            assert pool.stats().requests == 13  # 12 chunks of 16, one of 8
            squares = [{"x": x} for x in (*range(5), -1, 6)]
            async with pool.map("square", squares, chunksize=3, return_exceptions=True) as rs:
                got = [r async for r in rs]
            assert got[:5] == [0, 1, 4, 9, 16] and got[6] == 36
            assert isinstance(got[5], sp.RemoteError) and got[5].remote_message == "negative: -1"
    now, peak = (int(x) for x in gauge.read_text().split())
    assert now == 0 and 1 <= peak <= 2


async def test_a_cancelled_chunk_stops_between_its_items(tmp_path: Path) -> None:
    log = tmp_path / "log"
    items = [{"log": str(log), "i": i} for i in range(6)]
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2) as pool:
            with trio.CancelScope() as scope:
                async with pool.map("logged", items, chunksize=3) as results:
                    await wait_for(lambda: len(lines(log, "started")) == 2)
                    scope.cancel()
                    async for _ in results:
                        pytest.fail("no chunk finished")
            await wait_for(lambda: pool.stats().in_flight == 0)
    # The first item of each chunk saw the cancel; the others never started.
    assert lines(log, "started") == lines(log, "cancelled") == [0, 3]


async def test_an_idempotent_chunk_runs_again_after_a_crash(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    items = [{"path": str(calls), "crashes": 1}] * 3
    policy = sp.RetryPolicy(attempts=2, initial=0.01)
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=1, max_retries=0) as pool:
            async with pool.map(
                "crash_first", items, chunksize=3, retry=policy, idempotent=True
            ) as results:
                assert [r async for r in results] == [2, 3, 4]
            assert pool.stats().crashes == 1
