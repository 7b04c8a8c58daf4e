"""Large payloads through shared memory: zero-copy arrays, and no segment is ever left."""

from __future__ import annotations

import mmap
import os

import pytest
import trio

import snakepit_trio as sp
from snakepit_trio import _shm
from snakepit_trio._registry import Entry, Registry
from tests.helpers import wait_for

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not _shm.available(), reason="needs /dev/shm")

BUFFERS = "tests.adapters.basic:Buffers"
MB = 2**20


def segments(pool: sp.Pool) -> list[str]:
    mine = _shm.prefix(pool.records.token)
    return [name for name in os.listdir(_shm.SHM_DIR) if name.startswith(mine)]


def _is_mapped(array: object) -> bool:
    base = getattr(array, "base", None)
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None) if not isinstance(base, memoryview) else base.obj
    return isinstance(base, mmap.mmap)


async def test_large_arrays_and_bytes_travel_through_shared_memory() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(BUFFERS, size=1, shm_threshold=MB) as pool:
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
            assert segments(pool) == []  # every segment was removed once mapped
            del back, chunks


async def test_segments_go_when_the_caller_gives_up_or_the_worker_dies() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(BUFFERS, size=1, shm_threshold=MB) as pool:
            array = np.ones(MB)
            with trio.move_on_after(0.2):
                await pool.execute("slow_echo", {"value": array, "seconds": 0.6})
            assert segments(pool) == []  # the arguments went with the caller
            # The late result (an 8 MB array) is dropped, and its segment removed.
            await wait_for(lambda: pool.stats().in_flight == 0)
            assert segments(pool) == []

            with pytest.raises(sp.WorkerCrashed):
                await pool.execute("leave_segment_and_die")
            await wait_for(lambda: segments(pool) == [])  # swept once the worker was reaped

            async with pool.stream("arrays", {"n": MB // 4, "count": 20}, window=4) as stream:
                async for _ in stream:
                    break  # chunks already received and never read are released
            await wait_for(lambda: pool.stats().in_flight == 0)
            await wait_for(lambda: segments(pool) == [])


async def test_threshold_none_sends_everything_inline() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(BUFFERS, size=1, shm_threshold=None) as pool:
            back = await pool.execute("echo", {"value": np.ones(MB)})
            assert not _is_mapped(back) and float(back.sum()) == MB


async def test_segments_of_a_dead_host_are_swept(tmp_path: object) -> None:
    registry = Registry(str(tmp_path))
    registry.add(Entry("deadbeefdeadbeef", 1_000_000, 1.0, "pool-0", 1_000_000, 1.0, 1))
    name = _shm.create(_shm.prefix("deadbeefdeadbeef", "pool-0"), memoryview(b"x" * 100))
    with trio.fail_after(30):
        async with sp.open_pool(BUFFERS, size=1, state_dir=str(tmp_path)):
            assert not await trio.Path(_shm.SHM_DIR, name).exists()
