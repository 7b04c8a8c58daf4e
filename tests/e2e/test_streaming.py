"""End-to-end (real workers): streams, backpressure, early exit, crashes and timeouts."""

from __future__ import annotations

import os
import pathlib
import signal

import pytest
import trio

import snakepit_trio as sp
from tests.helpers import wait_for

STREAMS = "tests.adapters.streams:Streams"


async def test_chunks_arrive_in_order_sync_and_async_generators() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(STREAMS, size=1) as pool:
            async with pool.stream("count", {"n": 1000}, window=8) as chunks:
                assert [c async for c in chunks] == list(range(1000))
                assert chunks.finished
            async with pool.stream("acount", {"n": 50}) as chunks:
                assert [c async for c in chunks] == list(range(50))
            got: list[int] = []

            async def collect(chunk: int) -> None:
                got.append(chunk)

            await pool.execute_stream("count", {"n": 20}, got.append)
            await pool.execute_stream("acount", {"n": 5}, collect)
            assert got == [*range(20), *range(5)]
            assert pool.stats().in_flight == 0


async def test_slow_consumer_holds_the_producer_to_the_window() -> None:
    window = 4
    consumed = 0
    worst = 0

    def on_progress(p: sp.Progress) -> None:
        nonlocal worst
        # The worker reports each item before yielding it: it may be at most one item
        # beyond what the credit allows (the one it is waiting to send).
        worst = max(worst, int(p.done) - consumed)

    with trio.fail_after(60):
        async with (
            sp.open_pool(STREAMS, size=1) as pool,
            pool.stream("produce", {"n": 200}, window=window, on_progress=on_progress) as chunks,
        ):
            async for _ in chunks:
                consumed += 1
                await trio.sleep(0.002)  # a slow consumer, not synchronisation
    assert consumed == 200
    assert 0 < worst <= window + 1


@pytest.mark.parametrize("tool", ["guarded", "aguarded"])
async def test_leaving_early_closes_the_generator_and_frees_the_slot(
    tool: str, tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "closed"
    with trio.fail_after(30):
        async with sp.open_pool(STREAMS, size=1, prefetch=0) as pool:
            async with pool.stream(tool, {"marker": str(marker)}) as chunks:
                async for chunk in chunks:
                    if chunk == 10:
                        break
            await wait_for(marker.exists)  # the generator's finally ran
            await wait_for(lambda: pool.stats().in_flight == 0)
            assert await pool.execute("unary") == 1


async def test_cancelling_the_consumer_closes_the_generator(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "closed"
    with trio.fail_after(30):
        async with sp.open_pool(STREAMS, size=1) as pool:
            # Cancelled once its generator surely runs (a chunk came), not on a timer that
            # might fire before the generator started (then it has no finally to run).
            with trio.CancelScope() as scope:
                async with pool.stream("aguarded", {"marker": str(marker)}) as chunks:
                    async for _ in chunks:
                        scope.cancel()
            assert scope.cancelled_caught
            await wait_for(marker.exists)
            await wait_for(lambda: pool.stats().in_flight == 0)


async def test_crash_mid_stream_delivers_received_chunks_then_worker_crashed(
    tmp_path: pathlib.Path,
) -> None:
    got: list[int] = []
    crash_now = tmp_path / "crash-now"
    args = {"n": 5, "marker": str(crash_now)}
    with trio.fail_after(30):
        async with sp.open_pool(STREAMS, size=1) as pool:
            with pytest.raises(sp.WorkerCrashed) as info:
                async with pool.stream("crash_after", args, window=16) as chunks:
                    async for chunk in chunks:
                        got.append(chunk)
                        if len(got) == 5:
                            crash_now.touch()  # all five arrived: now the worker dies
            assert info.value.exit_code == 9
            assert got == list(range(5))
            await wait_for(lambda: pool.stats().workers == 1 and pool.stats().restarts == 1)
            async with pool.stream("count", {"n": 3}) as chunks:
                assert [c async for c in chunks] == [0, 1, 2]


async def test_worker_killed_mid_stream_is_never_retried() -> None:
    got: list[int] = []
    with trio.fail_after(30):
        async with sp.open_pool(STREAMS, size=2) as pool:
            with pytest.raises(sp.WorkerCrashed):
                async with pool.stream("stall", {"first": 3}) as chunks:
                    async for chunk in chunks:
                        got.append(chunk)
                        if len(got) == 3:
                            busy = next(w for w in pool.workers() if w.in_flight)
                            os.kill(busy.pid, signal.SIGKILL)
            assert got == [0, 1, 2]


async def test_remote_error_after_chunks() -> None:
    got: list[int] = []
    with trio.fail_after(30):
        async with sp.open_pool(STREAMS, size=1) as pool:
            with pytest.raises(sp.RemoteError, match="failed after 3"):
                async with pool.stream("raise_after", {"n": 3}) as chunks:
                    async for chunk in chunks:
                        got.append(chunk)
    assert got == [0, 1, 2]


async def test_idle_timeout_and_overall_timeout(tmp_path: pathlib.Path) -> None:
    with trio.fail_after(30):
        async with sp.open_pool(STREAMS, size=1) as pool:
            got: list[int] = []
            # The idle timeout also bounds the wait for each of the first chunks: it is
            # generous, so they surely arrive on a busy machine before the stall.
            with pytest.raises(sp.StreamIdleTimeout):
                async with pool.stream("stall", {"first": 2}, idle_timeout=2.0) as chunks:
                    async for chunk in chunks:
                        got.append(chunk)
            assert got == [0, 1]
            start = trio.current_time()
            with pytest.raises(sp.RequestTimeout) as info:
                async with pool.stream("acount", {"n": 10**6, "delay": 0.01}, timeout=0.3) as c:
                    async for _ in c:
                        pass
            end = trio.current_time()
            assert not isinstance(info.value, sp.StreamIdleTimeout)
            # Not before the timeout, and long before the stream (about 3 h) would end:
            # a generous bound across processes (exact time: pool-layer test).
            assert start + 0.3 <= end < start + 5.0
            await wait_for(lambda: pool.stats().in_flight == 0)


async def test_stream_argument_errors() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(STREAMS, size=1) as pool:
            with pytest.raises(sp.InvalidArguments, match="does not stream"):
                async with pool.stream("unary"):
                    pass
            with pytest.raises(sp.InvalidArguments, match="streams"):
                await pool.execute("count", {"n": 1})
            with pytest.raises(ValueError, match="window"):
                async with pool.stream("count", {"n": 1}, window=0):
                    pass
            with pytest.raises(sp.InvalidArguments):
                async with pool.stream("count", {"m": 1}):
                    pass
