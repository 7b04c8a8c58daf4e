"""The worker runtime in memory, fed frames directly (no host): its EVENT frames.

Events go only to a host that named "events" in its HELLO; a tool's events from its own
threads reach the loop before the tool's result; events outside calls wait for such a host
(a bounded number of them); a CALL's meta starts tracing only when it is sampled.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import msgpack
import pytest

from snakepit_trio._shared import _frames as w
from snakepit_trio.worker import Adapter, ToolContext, emit, tool
from snakepit_trio.worker._adapter import collect_tools
from snakepit_trio.worker._connection import Connection
from snakepit_trio.worker._events import MAX_PENDING, Outlet, sampled, use_outlet
from snakepit_trio.worker._runtime import Runtime

SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Emitting(Adapter):
    @tool
    def threads(self, n: int, ctx: ToolContext) -> int:
        def one(i: int) -> None:
            for j in range(5):
                ctx.emit("step", {"i": i, "j": j})

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return n

    @tool
    def traced(self, ctx: ToolContext) -> bool:
        return ctx._trace is not None


def call(call_id: int, tool: str, args: dict[str, Any], meta: Any = None) -> list[Any]:
    return w.call(call_id, tool, msgpack.packb(args), None, None, 0, meta)


async def connection(capabilities: tuple[str, ...] | None) -> Connection:
    use_outlet(Outlet())  # this test's own, not the process's
    runtime = Runtime(collect_tools(Emitting()), capacity=2, max_payload=1 << 20)
    conn = Connection(runtime)
    if capabilities is not None:
        conn.handle([w.hello(capabilities=capabilities)])
    return conn


def close(conn: Connection) -> None:
    conn.runtime.threads.close()  # its tool threads exit
    conn.runtime.executor.shutdown(wait=False)


def kinds(conn: Connection) -> list[int]:
    return [f[0] for f in conn.outbox]


@pytest.mark.parametrize("capabilities", [None, (), ("host_tools",)])
def test_a_host_that_takes_no_events_is_sent_none(capabilities: tuple[str, ...] | None) -> None:
    async def main() -> None:
        conn = await connection(capabilities)
        emit("before", {"n": 1})
        conn.handle([call(1, "threads", {"n": 2})])
        await conn.runtime.drain()
        close(conn)
        assert kinds(conn) == [w.RESULT]

    asyncio.run(main())


def test_events_from_tool_threads_arrive_before_the_result() -> None:
    async def main() -> None:
        conn = await connection(w.HOST_CAPABILITIES)
        conn.handle([call(1, "threads", {"n": 3})])
        await conn.runtime.drain()
        close(conn)
        events = [f for f in conn.outbox if f[0] == w.EVENT]
        assert len(events) == 15 and kinds(conn)[-1] == w.RESULT
        assert {(f[1], f[2]) for f in events} == {(1, "step")}
        assert sorted((f[3]["i"], f[3]["j"]) for f in events) == [
            (i, j) for i in range(3) for j in range(5)
        ]
        for f in events:  # each frame is what the host parses
            assert type(w.parse_from_worker(f)) is w.Event

    asyncio.run(main())


def test_events_outside_calls_wait_for_a_host_that_takes_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio.worker")

    async def main() -> None:
        conn = await connection(None)
        for i in range(MAX_PENDING + 5):
            emit("early", {"i": i})
        assert conn.outbox == []
        conn.handle([w.hello()])
        early = [f for f in conn.outbox if f[0] == w.EVENT]
        assert [f[3]["i"] for f in early] == list(range(MAX_PENDING))
        assert all(f[1] is None for f in early)
        emit("late")  # bound now: straight to the connection
        assert conn.outbox[-1][2] == "late"
        close(conn)

    asyncio.run(main())
    [warning] = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert "5 telemetry events emitted before the host connected" in warning.getMessage()


@pytest.mark.parametrize(
    ("meta", "traced"),
    [
        ({"traceparent": SAMPLED}, True),
        ({"traceparent": SAMPLED[:-2] + "00"}, False),
        ({"traceparent": "garbage"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_only_a_sampled_context_traces_a_call(meta: Any, traced: bool) -> None:
    assert sampled(meta or {}) is traced

    async def main() -> None:
        conn = await connection(w.HOST_CAPABILITIES)
        conn.handle([call(1, "traced", {}, meta)])
        await conn.runtime.drain()
        close(conn)
        [result] = [f for f in conn.outbox if f[0] == w.RESULT]
        assert msgpack.unpackb(result[2]) is traced

    asyncio.run(main())
