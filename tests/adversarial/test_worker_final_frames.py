"""The worker runtime in memory, fed frames directly (no host): whenever a CANCEL arrives,
a call ends with exactly one final frame (RESULT, END or ERROR), and nothing follows it.

The host treats a second final frame as a broken protocol and kills the worker, so a
worker that answered twice lost every call it ran. A cancel storm with real workers
found one: an async generator that had sent END was cancelled while it was being closed,
and the cancel sent an ERROR as well. Here the CANCEL is delivered at every moment of
each kind of call: after each loop pass, and from inside the sink right after each frame
the call sends (the moment a frame has been queued and the code goes on).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgpack
import pytest

from snakepit_trio._shared import _frames as w
from snakepit_trio.worker import Adapter, tool
from snakepit_trio.worker._adapter import collect_tools
from snakepit_trio.worker._connection import Connection
from snakepit_trio.worker._runtime import Runtime

FINAL = (w.RESULT, w.END, w.ERROR)
OF_A_CALL = (*FINAL, w.CHUNK, w.CHUNKS, w.PROGRESS)


class Kinds(Adapter):
    @tool
    def sync(self) -> str:
        return "done"

    @tool
    async def coro(self) -> str:
        for _ in range(3):
            await asyncio.sleep(0)
        return "done"

    @tool
    def gen(self, n: int) -> Iterator[int]:
        yield from range(n)

    @tool
    async def agen(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    @tool
    async def agen_eager(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    @tool
    async def agen_slow_finally(self, n: int) -> AsyncIterator[int]:
        try:
            for i in range(n):
                yield i
        finally:
            for _ in range(3):
                await asyncio.sleep(0)


class CancelsOnFrame(Connection):
    """A connection that delivers CANCEL(1) from inside its sink, right after call 1's
    ``cancel_at``-th frame (chunks, progress and the final frame count)."""

    def __init__(self, runtime: Runtime, cancel_at: int) -> None:
        super().__init__(runtime)
        self.cancel_at = cancel_at
        self.seen = 0

    def emit(self, frame: list[Any]) -> None:
        super().emit(frame)
        if frame[0] in OF_A_CALL and frame[1] == 1:
            self.seen += 1
            if self.seen == self.cancel_at:
                self.handle([w.cancel(1)])


CALLS = {
    "sync": ({}, 0),
    "coro": ({}, 0),
    "gen": ({"n": 3}, 8),
    "agen": ({"n": 3}, 8),
    "agen_eager": ({"n": 3}, 8),
    "agen_slow_finally": ({"n": 3}, 8),
}


async def _run(
    tool_name: str, inline: bool, cancel_at_frame: int, cancel_after_passes: int
) -> list[Any]:
    args, window = CALLS[tool_name]
    runtime = Runtime(collect_tools(Kinds()), capacity=1, max_payload=1 << 20, inline=inline)
    conn = CancelsOnFrame(runtime, cancel_at_frame)
    conn.handle([w.call(1, tool_name, msgpack.packb(args), None, None, window)])
    for _ in range(cancel_after_passes):
        await asyncio.sleep(0)
    if cancel_after_passes >= 0:
        conn.handle([w.cancel(1)])  # ignored if the call has ended
    await asyncio.wait_for(runtime.drain(), timeout=10)
    for _ in range(5):  # anything a late task would still send
        await asyncio.sleep(0)
    if not inline:
        runtime.threads.close()
    runtime.executor.shutdown(wait=True)
    return [f for f in conn.outbox if f[0] in OF_A_CALL and f[1] == 1]


def _check(frames: list[Any], what: str) -> None:
    finals = [f for f in frames if f[0] in FINAL]
    assert len(finals) == 1, f"{what}: {len(finals)} final frames: {finals}"
    assert frames[-1] is finals[0], f"{what}: frames after the final one: {frames}"


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "threads"])
@pytest.mark.parametrize("tool_name", sorted(CALLS))
def test_a_cancel_at_any_moment_gets_one_final_frame(tool_name: str, inline: bool) -> None:
    async def main() -> None:
        for frame in range(1, 6):
            what = f"{tool_name}: cancel right after frame {frame}"
            _check(await _run(tool_name, inline, frame, -1), what)
        for passes in range(8):
            what = f"{tool_name}: cancel after {passes} loop passes"
            _check(await _run(tool_name, inline, 0, passes), what)

    asyncio.run(main())
