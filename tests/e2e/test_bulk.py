"""End-to-end (real worker processes): map, as_completed and execute_batch. What the tools
saw (calls running at once, starts and cancels) is kept in files the test reads.

Every wait is bounded by trio.fail_after; tests wait for files and results, never for time.
"""

from __future__ import annotations

import contextlib
from collections import Counter
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


@pytest.mark.parametrize("chunksize", [1, "auto"])
async def test_an_endless_async_input_is_read_as_fast_as_it_is_consumed(
    tmp_path: Path, chunksize: int | str
) -> None:
    """One item per call: at most 2 * max_concurrency items are read and not consumed. So
    too under "auto" for items that take longer than a chunk's 5 ms (10 ms here): they go
    one to a call."""
    gauge = tmp_path / "gauge"
    produced = 0

    async def endless() -> AsyncIterator[dict[str, Any]]:
        nonlocal produced
        while True:
            produced += 1
            yield {"gauge": str(gauge), "value": produced, "seconds": 0.01}

    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2) as pool:
            got = []
            async with (
                contextlib.aclosing(endless()) as source,
                pool.map("gauge", source, max_concurrency=4, chunksize=chunksize) as results,
            ):
                async for r in results:
                    got.append(r)
                    if len(got) == 10:
                        break
            assert got == list(range(1, 11))
            assert produced <= 10 + 2 * 4
            await wait_for(lambda: pool.stats().in_flight == 0)
            assert pool.stats().requests <= produced  # one item per call


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


# --- chunksize="auto" (the default) -------------------------------------------------------------
def ran(log: Path) -> list[tuple[int, int, int]]:
    """(item, worker pid, call id) of each item the "noted" tool ran, in the order run."""
    if not log.exists():
        return []
    found = [line.split()[1:] for line in log.read_text().splitlines() if line.startswith("ran ")]
    return [(int(i), int(pid), int(call)) for i, pid, call in found]


async def test_auto_runs_every_item_once_in_order_with_errors_in_place(tmp_path: Path) -> None:
    log = tmp_path / "log"
    bad = {700, 2222}
    items = [{"log": str(log), "i": i, "fail": i in bad} for i in range(3000)]
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2) as pool:
            async with pool.map("noted", items, return_exceptions=True) as results:
                got = [r async for r in results]
            calls = pool.stats().requests
    assert [g for i, g in enumerate(got) if i not in bad] == [
        i for i in range(3000) if i not in bad
    ]
    for i in bad:
        assert isinstance(got[i], sp.RemoteError) and got[i].remote_message == f"item {i} fails"
    assert sorted(i for i, _, _ in ran(log)) == list(range(3000))  # each once
    # In chunks: many items to a call, and a chunk's items run in order, one after another.
    assert calls < 300
    chunks = Counter(call for _, _, call in ran(log))
    assert max(chunks.values()) > 10 and len(chunks) == calls
    for call in chunks:
        run = [i for i, _, c in ran(log) if c == call]
        assert run == list(range(run[0], run[0] + len(run)))


async def test_auto_raises_the_first_error_and_its_chunk_ends_there(tmp_path: Path) -> None:
    log = tmp_path / "log"
    items = [{"log": str(log), "i": i, "fail": i == 2000} for i in range(3000)]
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2) as pool:
            with pytest.raises(sp.RemoteError, match="item 2000 fails") as info:
                async with pool.map("noted", items) as results:
                    async for _ in results:
                        pass
            assert type(info.value) is sp.RemoteError
            await wait_for(lambda: pool.stats().in_flight == 0)
    seen = ran(log)
    assert len(seen) == len({i for i, _, _ in seen})  # none ran twice
    assert max(Counter(call for _, _, call in seen).values()) > 10  # in chunks
    failed_in = next(call for i, _, call in seen if i == 2000)
    assert max(i for i, _, call in seen if call == failed_in) == 2000  # its chunk ended there


async def test_leaving_an_auto_map_cancels_its_chunks(tmp_path: Path) -> None:
    """Fast items make the chunks grow; then items that run until cancelled. Leaving the
    block cancels the chunks running them: each stops at its held item."""
    log = tmp_path / "log"
    items = [{"log": str(log), "i": i, "hold": i >= 1000} for i in range(1200)]
    got: list[int] = []

    async def consume(results: AsyncIterator[int]) -> None:
        async for r in results:
            got.append(r)

    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2) as pool:
            with trio.CancelScope() as scope:
                async with pool.map("noted", items) as results, trio.open_nursery() as nursery:
                    nursery.start_soon(consume, results)
                    await wait_for(lambda: any(i >= 1000 for i, _, _ in ran(log)))
                    scope.cancel()
            # Every chunk answers its cancel once its held item has logged it; a chunk that
            # reached a held item just as the map was left counts too, so the items held are
            # read only once no call is in flight.
            await wait_for(lambda: pool.stats().in_flight == 0)
            held = [i for i, _, _ in ran(log) if i >= 1000]
            assert held and lines(log, "cancelled") == sorted(held)
    seen = ran(log)
    assert sorted(i for i, _, _ in seen if i < 1000) == list(range(1000))  # each once
    # In order, a prefix of the fast items (all of them, if the consumer was quick); no held
    # item ever has a result.
    assert got == list(range(len(got))) and len(got) <= 1000
    for i in held:  # its chunk stopped at it: nothing after it ran in that call
        call = next(c for j, _, c in seen if j == i)
        assert max(j for j, _, c in seen if c == call) == i


async def test_auto_spreads_slow_items_over_the_workers(tmp_path: Path) -> None:
    """Every 20th item takes 30 ms, the others microseconds: chunks of the fast ones grow,
    but no chunk takes more than two slow ones, and both workers run slow ones. One chunk
    of them all (chunksize=len(items)) runs every item on one worker."""
    items = [{"i": i, "seconds": 0.03 if i % 20 == 0 else 0.0} for i in range(400)]
    with trio.fail_after(60):
        async with sp.open_pool(FLAKY, size=2) as pool:
            pids = {w.pid for w in pool.workers()}
            for chunksize in ("auto", len(items)):
                log = tmp_path / f"log-{chunksize}"
                args = [{"log": str(log), **item} for item in items]
                before = pool.stats().requests
                async with pool.map("noted", args, chunksize=chunksize) as results:
                    assert [r async for r in results] == list(range(400))
                calls = pool.stats().requests - before
                slow = [(pid, call) for i, pid, call in ran(log) if i % 20 == 0]
                if chunksize == "auto":
                    assert len(pids) == 2 and {pid for pid, _ in slow} == pids
                    assert max(Counter(call for _, call in slow).values()) <= 2
                    assert calls < 400  # the fast ones in chunks
                else:
                    assert len({pid for pid, _ in slow}) == 1 and calls == 1
