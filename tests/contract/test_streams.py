"""Contract: streaming calls, credits, early close, errors mid-stream and progress."""

from __future__ import annotations

import pytest
import trio

import snakepit_trio as sp
from tests.contract.conftest import OpenContract


async def test_a_stream_yields_every_chunk_in_order(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            async with pool.stream("count", {"n": 500}, window=4) as chunks:
                got = [c async for c in chunks]
            assert got == list(range(500))
            seen: list[int] = []
            await pool.execute_stream("count", {"n": 3}, seen.append)
            assert seen == [0, 1, 2]


async def test_the_worker_never_runs_ahead_of_its_credit(contract: OpenContract) -> None:
    """A consumer that stops reading holds the producer at ``window`` chunks ahead: the
    worker's generator pauses, and a unary call on the same worker is still answered."""
    with trio.fail_after(60):
        async with contract(worker_capacity=2) as pool:
            async with pool.stream("count", {"n": 10_000}, window=3) as chunks:
                first = await chunks.__anext__()
                # Unread: at most the window is buffered here; the rest stays unproduced.
                assert await pool.execute("add", {"a": 1}) == 2
                assert first == 0
                rest = [c async for c in chunks]
            assert rest == list(range(1, 10_000))


async def test_leaving_a_stream_early_stops_the_generator(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            pid = await pool.execute("pid")
            async with pool.stream("stall", {"first": 7}) as chunks:
                async for chunk in chunks:
                    assert chunk == 7
                    break
            # The slot is free again: the stalled generator was closed, not left running.
            assert await pool.execute("add", {"a": 1}, timeout=20) == 2
            assert await pool.execute("pid") == pid and pool.stats().crashes == 0


async def test_an_error_mid_stream_comes_after_the_chunks_sent(contract: OpenContract) -> None:
    got: list[int] = []
    with trio.fail_after(60):
        async with contract() as pool:
            with pytest.raises(sp.RemoteError) as info:
                async with pool.stream("raise_after", {"n": 3}) as chunks:
                    async for chunk in chunks:
                        got.append(chunk)
            assert got == [0, 1, 2]
            assert info.value.remote_type == "ValueError" and "after 3" in str(info.value)
            assert await pool.execute("add", {"a": 1}) == 2


async def test_progress_of_a_stream(contract: OpenContract) -> None:
    seen: list[tuple[float, float | None]] = []
    with trio.fail_after(60):
        async with (
            contract() as pool,
            pool.stream(
                "ticks", {"n": 4}, on_progress=lambda p: seen.append((p.done, p.total))
            ) as chunks,
        ):
            assert [c async for c in chunks] == [0, 1, 2, 3]
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


async def test_streams_and_unary_calls_are_kept_apart(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            with pytest.raises(sp.InvalidArguments, match="stream"):
                await pool.execute("count", {"n": 1})
            with pytest.raises(sp.InvalidArguments, match="stream"):
                async with pool.stream("add", {"a": 1}) as chunks:
                    [c async for c in chunks]


async def test_an_idle_stream_times_out_and_the_worker_recovers(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            with pytest.raises(sp.StreamIdleTimeout):
                async with pool.stream("stall", {"first": 1}, idle_timeout=0.5) as chunks:
                    [c async for c in chunks]
            assert await pool.execute("add", {"a": 2}, timeout=20) == 3
