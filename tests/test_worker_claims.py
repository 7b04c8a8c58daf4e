"""The worker runtime in memory, fed frames directly (no host), with tools run inline as
snakepit_trio.testing runs them: a CANCEL for a call that has not started withdraws it.

It is answered at once with ERROR(cancelled, {"started": False}) and the tool never runs;
the same calls in worker processes are tested in tests/e2e/test_withdrawn_calls.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import msgpack

from snakepit_trio._shared import _frames as w
from snakepit_trio.worker import Adapter, tool
from snakepit_trio.worker._adapter import collect_tools
from snakepit_trio.worker._connection import Connection
from snakepit_trio.worker._runtime import Runtime

NOT_STARTED = [
    "CancelledError", "call cancelled before it started", "", w.KIND_CANCELLED, {"started": False}
]  # fmt: skip


class Held(Adapter):
    async def initialize(self) -> None:
        self.ran: list[str] = []
        self.release = asyncio.Event()

    @tool
    async def hold(self) -> str:
        await self.release.wait()
        return "released"

    @tool
    def mark(self, name: str) -> str:
        self.ran.append(name)
        return name

    @tool
    async def amark(self, name: str) -> str:
        self.ran.append(name)
        return name

    @tool
    def gen_mark(self, name: str) -> Iterator[str]:
        self.ran.append(name)
        yield name


def call(call_id: int, tool: str, args: dict[str, Any], window: int = 0) -> list[Any]:
    return w.call(call_id, tool, msgpack.packb(args), None, None, window)


async def _serve(adapter: Held) -> Connection:
    await adapter.initialize()
    runtime = Runtime(collect_tools(adapter), capacity=1, max_payload=1 << 20, inline=True)
    return Connection(runtime)


def finals(conn: Connection) -> dict[int, list[Any]]:
    return {f[1]: f for f in conn.outbox if f[0] in (w.RESULT, w.END, w.ERROR)}


def test_an_inline_sync_call_cancelled_in_its_own_batch_never_runs() -> None:
    async def main() -> None:
        adapter = Held()
        conn = await _serve(adapter)
        conn.handle(
            [call(1, "mark", {"name": "one"}), w.cancel(1), call(2, "mark", {"name": "two"})]
        )
        # Answered while the frames were read, before the loop ran any tool.
        assert finals(conn) == {1: [w.ERROR, 1, *NOT_STARTED]}
        await conn.runtime.drain()
        assert finals(conn)[2][:2] == [w.RESULT, 2]
        assert adapter.ran == ["two"]

    asyncio.run(main())


def test_an_inline_call_cancelled_while_it_waits_for_the_slot_never_runs() -> None:
    async def main() -> None:
        adapter = Held()
        conn = await _serve(adapter)
        conn.handle([call(1, "hold", {})])
        for waiting in (call(2, "amark", {"name": "a"}), call(3, "gen_mark", {"name": "g"}, 1)):
            conn.handle([waiting])
            await asyncio.sleep(0)  # one loop pass: its task waits for the slot call 1 holds
            conn.handle([w.cancel(waiting[1])])
            assert finals(conn)[waiting[1]] == [w.ERROR, waiting[1], *NOT_STARTED]
        assert 1 not in finals(conn)
        adapter.release.set()
        conn.handle([call(4, "amark", {"name": "after"})])
        await conn.runtime.drain()
        assert finals(conn)[1][:2] == [w.RESULT, 1]
        assert finals(conn)[4][:2] == [w.RESULT, 4]
        assert adapter.ran == ["after"]

    asyncio.run(main())
