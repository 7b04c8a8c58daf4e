"""Large payloads through shared memory: zero-copy arrays, segments reused only once no
view of them is left, and no segment outlives its pool."""

from __future__ import annotations

import mmap
import os

import numpy as np
import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._shared import _shm
from snakepit_trio._shared._segments import MAX_FREE
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(not _shm.available(), reason="needs /dev/shm")

BUFFERS = "tests.adapters.basic:Buffers"
MB = 2**20


def segments(pool: sp.Pool, maker: str | None = None) -> list[str]:
    """This pool's segments in /dev/shm (of one maker: "host" or a worker id)."""
    return _segments_of(_shm.prefix(pool._engine.launcher.records.token, maker))


def _segments_of(prefix: str) -> list[str]:
    return sorted(name for name in os.listdir(_shm.SHM_DIR) if name.startswith(prefix))


def _worker(pool: sp.Pool) -> str:
    [worker] = pool.workers()
    return worker.id


def _is_mapped(array: object) -> bool:
    base = getattr(array, "base", None)
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None) if not isinstance(base, memoryview) else base.obj
    return isinstance(base, mmap.mmap)


async def test_large_arrays_and_bytes_travel_through_shared_memory() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(BUFFERS, size=1, shm_threshold=MB) as pool:
            prefix = _shm.prefix(pool._engine.launcher.records.token)
            array = np.random.default_rng(1).random(MB)  # 8 MB
            back = await pool.execute("echo", {"value": array})
            assert np.array_equal(back, array) and back.dtype == array.dtype
            assert _is_mapped(back) and not back.flags.writeable  # a view, not a copy
            blob = os.urandom(3 * MB)
            assert await pool.execute("echo", {"value": {"b": blob, "small": b"x"}}) == {
                "b": blob,
                "small": b"x",
            }
            small = await pool.execute("echo", {"value": np.arange(10.0)})
            assert not _is_mapped(small)  # below the threshold: inline
            chunks = []
            async with pool.stream("arrays", {"n": MB // 4, "count": 3}) as stream:
                async for chunk in stream:
                    chunks.append(chunk)
            assert [float(c[0]) for c in chunks] == [0.0, 1.0, 2.0] and _is_mapped(chunks[0])
            del back, chunks
            # What is kept for reuse is bounded, per process.
            assert len(segments(pool, "host")) <= MAX_FREE
            await wait_for(lambda: len(segments(pool, _worker(pool))) <= MAX_FREE)
    assert _segments_of(prefix) == []  # and nothing outlives the pool


async def test_segments_are_reused_once_no_view_of_them_is_left() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(BUFFERS, size=1, shm_threshold=MB) as pool:
            rng = np.random.default_rng(2)
            first = rng.random(MB)
            back = await pool.execute("echo", {"value": first})
            assert np.array_equal(back, first)
            del back  # the worker's result segment is no longer mapped here
            host = pool._engine.payloads.segments
            assert host is not None
            await wait_for(lambda: not host.out_names())
            made = segments(pool)
            for _ in range(5):
                value = rng.random(MB)
                back = await pool.execute("echo", {"value": value})
                assert np.array_equal(back, value)  # new content in the old segments
                del back
            await wait_for(lambda: not pool._engine.payloads.segments.out_names())  # type: ignore[union-attr]
            assert segments(pool) == made  # no segment was made after the first round trip
            assert pool._engine.payloads.segments.reused == 5  # type: ignore[union-attr]


async def test_a_segment_is_never_rewritten_while_a_view_of_it_lives() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(BUFFERS, size=1, shm_threshold=MB) as pool:
            ones, twos, threes = np.ones(MB), np.full(MB, 2.0), np.full(MB, 3.0)
            held = await pool.execute("echo", {"value": ones})  # the host keeps this view
            later = await pool.execute("echo", {"value": twos})
            assert float(held.sum()) == MB and float(later.sum()) == 2 * MB
            await pool.execute("keep", {"value": ones})  # the worker keeps a view of ours
            for _ in range(3):
                back = await pool.execute("echo", {"value": threes})
                assert float(back.sum()) == 3 * MB
                del back
            assert await pool.execute("kept_sum") == MB
            assert float(held.sum()) == MB and float(later.sum()) == 2 * MB


async def test_segments_go_when_the_caller_gives_up_or_the_worker_dies() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(BUFFERS, size=1, shm_threshold=MB) as pool:
            host = pool._engine.payloads.segments
            assert host is not None
            array = np.ones(MB)
            # The tool holds the arguments until cancelled, so when the caller gives up the
            # worker still maps them, whenever the timer fires; and nothing in between lets
            # the host hear from the worker (no checkpoint from the cancel to the check).
            with trio.move_on_after(0.2):
                await pool.execute("hold_until_cancelled", {"value": array})
            # The worker still maps the arguments: they are not reused until it lets go.
            assert len(host.out_names()) == 1
            # Once its call has ended there, the worker lets go of them: reusable again.
            await wait_for(lambda: pool.stats().in_flight == 0)
            await wait_for(lambda: not host.out_names())
            assert len(host.free_names()) == 1
            worker = _worker(pool)

            with pytest.raises(sp.WorkerCrashed):
                await pool.execute("leave_segment_and_die")
            await wait_for(lambda: segments(pool, worker) == [])  # swept once it was reaped

            async with pool.stream("arrays", {"n": MB // 4, "count": 20}, window=8) as stream:
                first = await stream.__anext__()
            assert float(first[0]) == 0.0
            del first
            # Up to 8 chunks were sent and never read (buffered, or dropped on arrival):
            # each is handed back, and the worker keeps at most MAX_FREE of them.
            await wait_for(lambda: pool.stats().in_flight == 0)
            await wait_for(lambda: len(segments(pool, _worker(pool))) <= MAX_FREE)
