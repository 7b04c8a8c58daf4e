"""Contract: a worker's tools call the host's tools, and send telemetry events."""

from __future__ import annotations

import trio

import snakepit_trio as sp
from tests.contract.conftest import OpenContract


async def test_a_tool_calls_host_tools_and_sees_their_errors_typed(
    contract: OpenContract,
) -> None:
    with trio.fail_after(60):
        async with contract() as pool:

            @pool.host_tool
            async def lookup(key: str) -> dict[str, object]:
                await trio.lowlevel.checkpoint()
                return {"key": key, "bytes": b"\x01"}

            @pool.host_tool
            def boom(n: int) -> None:
                raise KeyError(f"no {n}")

            got = await pool.execute("host", {"name": "lookup", "args": {"key": "k"}})
            assert got == {"ok": {"key": "k", "bytes": b"\x01"}}
            assert await pool.execute("host_list") == ["boom", "lookup"]
            got = await pool.execute("host", {"name": "boom", "args": {"n": 3}})
            assert got == {"error": "HostToolError", "kind": "remote"}
            got = await pool.execute("host", {"name": "nope", "args": None})
            assert got == {"error": "UnknownHostTool", "kind": "unknown_tool"}
            got = await pool.execute("host", {"name": "boom", "args": {"n": "x"}})
            assert got == {"error": "HostToolError", "kind": "invalid_arguments"}
            assert pool.stats().crashes == 0


async def test_a_sessions_host_tools_are_its_calls_own(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:

            @pool.host_tool
            def who() -> str:
                return "pool"

            async with pool.session("s") as session:

                @session.host_tool(name="who")
                def session_who() -> str:
                    return "session"

                assert await session.execute("host", {"name": "who", "args": None}) == {
                    "ok": "session"
                }
            assert await pool.execute("host", {"name": "who", "args": None}) == {"ok": "pool"}


async def test_a_host_tool_may_call_the_pool_again(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract(size=2) as pool:

            @pool.host_tool
            async def twice(n: int) -> int:
                return int(await pool.execute("add", {"a": n, "b": n}))

            assert await pool.execute("host", {"name": "twice", "args": {"n": 21}}) == {"ok": 42}


async def test_cancelling_the_caller_cancels_the_host_tool(contract: OpenContract) -> None:
    cancelled = trio.Event()
    started = trio.Event()
    with trio.fail_after(60):
        async with contract() as pool:

            @pool.host_tool
            async def forever() -> None:
                started.set()
                try:
                    await trio.sleep_forever()
                finally:
                    cancelled.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pool.execute, "host", {"name": "forever", "args": None})
                await started.wait()
                nursery.cancel_scope.cancel()
            await cancelled.wait()
            assert await pool.execute("add", {"a": 1}, timeout=20) == 2


async def test_a_tool_emits_events_to_the_pools_handlers(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            async with pool.telemetry.subscribe("adapter.contract.*") as events:
                await pool.execute("emit", {"name": "contract.loss", "value": 0.25})
                event = await events.receive()
            assert event.name == "adapter.contract.loss"
            assert event.measurements == {"value": 0.25}
            assert event.metadata["source"] == "contract" and event.metadata["tool"] == "emit"
            assert event.metadata["worker_id"] == pool.workers()[0].id


async def test_a_tool_reads_and_writes_its_sessions_variables(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool, pool.session("v") as session:
            session.register_variable("threshold", "float", 0.5, max=1.0)
            get = {"name": "snakepit.get_variable", "args": {"name": "threshold"}}
            assert await session.execute("host", get) == {"ok": {"value": 0.5}}
            put = {"name": "threshold", "value": 0.75}
            got = await session.execute("host", {"name": "snakepit.set_variable", "args": put})
            assert "ok" in got and session.get_variable("threshold") == 0.75
            put = {"name": "threshold", "value": 2.0}  # above its max: refused
            got = await session.execute("host", {"name": "snakepit.set_variable", "args": put})
            assert "ok" in got and "error" in got["ok"]
            assert session.get_variable("threshold") == 0.75
            assert isinstance(session, sp.Session)
