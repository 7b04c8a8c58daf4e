"""The worker runtime in memory with real tool threads, fed frames directly (no host): one
``capacity`` limits sync, async and streaming calls together, a borrowed call runs beyond
it, ``@tool(exclusive=True)`` never overlaps, and a CANCEL still withdraws a call that has
not begun. The same limits with worker processes: tests/e2e/test_thread_profile.py."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import pytest

from snakepit_trio._shared import _frames as w
from snakepit_trio.worker._adapter import collect_tools
from snakepit_trio.worker._claim import RUNNING
from snakepit_trio.worker._connection import Connection, describe_map
from snakepit_trio.worker._runtime import Runtime
from tests.adapters.threads import Counted

ids = itertools.count(1)
NOT_STARTED = [
    "CancelledError", "call cancelled before it started", "", w.KIND_CANCELLED, {"started": False}
]  # fmt: skip


def call(tool: str, args: dict[str, Any], *, borrow: bool = False) -> list[Any]:
    meta = {"borrow": True} if borrow else None
    return w.call(next(ids), tool, msgpack.packb(args), None, None, 100, meta)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds (tool threads change it), failing after ``timeout``."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - threads change it; no event to wait on
            await asyncio.sleep(0.001)


def finals(conn: Connection) -> dict[int, list[Any]]:
    return {f[1]: f for f in conn.outbox if f[0] in (w.RESULT, w.END, w.ERROR)}


def run(capacity: int, body: Callable[[Counted, Connection], Awaitable[None]]) -> None:
    async def main() -> None:
        adapter = Counted()
        await adapter.initialize()
        runtime = Runtime(
            collect_tools(adapter), capacity=capacity, max_payload=1 << 20, thread_safe=True
        )
        try:
            await body(adapter, Connection(runtime))
        finally:
            runtime.threads.close()
            runtime.executor.shutdown(wait=False)

    asyncio.run(main())


KINDS = [
    ("sync_work", {"seconds": 0.02}),
    ("async_work", {"seconds": 0.02}),
    ("sync_stream", {"n": 3, "seconds": 0.007}),
    ("async_stream", {"n": 3, "seconds": 0.007}),
]


@pytest.mark.parametrize("capacity", [1, 2, 3])
def test_one_limit_holds_across_sync_async_and_streaming_calls(capacity: int) -> None:
    async def body(adapter: Counted, conn: Connection) -> None:
        rng = random.Random(capacity)
        frames = [call(*rng.choice(KINDS)) for _ in range(24)]
        conn.handle(frames)  # all at once, as a host that prefetched them would send them
        await conn.runtime.drain()
        done = finals(conn)
        assert sorted(done) == sorted(f[1] for f in frames)
        assert {f[0] for f in done.values()} <= {w.RESULT, w.END}, done
        assert adapter.peak == capacity  # reached, never passed
        assert conn.runtime.slots.running == 0

    run(capacity, body)


def test_a_borrowed_call_runs_beyond_capacity() -> None:
    async def body(adapter: Counted, conn: Connection) -> None:
        conn.handle([call("sync_work", {"seconds": 0.5}), call("async_work", {"seconds": 0.5})])
        await until(lambda: adapter.running == 2)  # capacity 2 is full
        for kind in ("sync_work", "async_work"):
            conn.handle([call(kind, {"seconds": 0.2}, borrow=True)])
        await until(lambda: adapter.running == 4)  # the borrowed calls did not wait for a slot
        await conn.runtime.drain()
        assert len(finals(conn)) == 4

    run(2, body)


@pytest.mark.parametrize("tool", ["exclusive_sync", "exclusive_async"])
def test_an_exclusive_tool_never_overlaps_while_other_tools_run(tool: str) -> None:
    async def body(adapter: Counted, conn: Connection) -> None:
        frames = [call(tool, {"seconds": 0.01}) for _ in range(10)]
        frames += [call("async_work", {"seconds": 0.01}) for _ in range(10)]
        conn.handle(frames)
        await conn.runtime.drain()
        assert adapter.overlaps == 0
        assert adapter.peak >= 2  # other calls ran beside it
        assert all(f[0] == w.RESULT for f in finals(conn).values())

    run(4, body)


def test_a_call_cancelled_while_it_waits_for_an_exclusive_tool_never_runs_it() -> None:
    async def body(adapter: Counted, conn: Connection) -> None:
        first = call("exclusive_cancellable", {"seconds": 5})
        second = call("exclusive_cancellable", {"seconds": 5})
        conn.handle([first, second])
        # The first runs; the second has begun in its thread (it holds a slot) and waits
        # for the tool's lock.
        await until(lambda: adapter.running == 1 and conn.calls[second[1]].state == RUNNING)
        conn.handle([w.cancel(second[1])])
        await until(lambda: second[1] in finals(conn))
        assert finals(conn)[second[1]][:3] == [w.ERROR, second[1], "CancelledError"]
        assert adapter.peak == 1
        conn.handle([w.cancel(first[1])])
        await conn.runtime.drain()

    run(2, body)


def test_a_cancel_withdraws_calls_waiting_for_a_slot_of_every_kind() -> None:
    async def body(adapter: Counted, conn: Connection) -> None:
        conn.handle([call("sync_work", {"seconds": 0.2})])  # takes the one slot at once
        waiting = [call(tool, args) for tool, args in KINDS]
        conn.handle(waiting)
        conn.handle([w.cancel(f[1]) for f in waiting])
        for f in waiting:  # answered at once, never started
            assert finals(conn)[f[1]] == [w.ERROR, f[1], *NOT_STARTED]
        await conn.runtime.drain()
        assert adapter.peak == 1
        conn.handle([call("async_work", {"seconds": 0.01})])  # the slot was not lost
        await conn.runtime.drain()
        assert conn.runtime.slots.running == 0

    run(1, body)


def test_the_description_says_gil_thread_safety_and_threaded_tools() -> None:
    async def body(adapter: Counted, conn: Connection) -> None:
        described = describe_map(conn.runtime, "tests.adapters.threads:Counted")
        assert described["thread_safe"] is True
        assert isinstance(described["gil_enabled"], bool)
        threaded = {t["name"] for t in described["tools"] if t["threaded"]}
        assert threaded == {
            "sync_work",
            "sync_stream",
            "exclusive_sync",
            "exclusive_cancellable",
            "counts",
        }

    run(1, body)
