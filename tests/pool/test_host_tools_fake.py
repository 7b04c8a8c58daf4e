"""Pool layer (in memory, virtual clock): adapters that call host tools, under the fake."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import open_fake_pool

BRIDGE = "tests.adapters.bridge:Bridge"


async def test_async_tools_call_host_tools_in_the_fake_and_deadlines_are_virtual(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_pool(BRIDGE, size=1) as pool:

        @pool.host_tool
        async def slow(seconds: float, ctx: sp.HostToolContext) -> Any:
            await trio.sleep(seconds)
            return ctx.tool

        got = await pool.execute("acall", {"name": "slow", "args": {"seconds": 5}})
        assert got == {"value": "acall"}
        start = trio.current_time()
        try:
            await pool.execute("acall", {"name": "slow", "args": {"seconds": 100}}, timeout=10)
        except sp.RequestTimeout:
            pass
        else:
            raise AssertionError("the call outlived its deadline")
        assert trio.current_time() - start == 10  # virtual: the host tool was cut off there
        got = await pool.execute("call", {"name": "slow", "args": {"seconds": 1}})
        assert got["error"] == "RuntimeError"  # sync tools run on the fake's loop


async def test_host_tools_report_their_start_stop_and_failures_as_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_pool(BRIDGE, size=1) as pool:
        seen: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        pool.telemetry.attach(
            "test", ["host_tool.*"], lambda e: seen.append((e.name, e.measurements, e.metadata))
        )

        @pool.host_tool
        async def slow(seconds: float) -> str:
            await trio.sleep(seconds)
            return "done"

        @pool.host_tool
        async def broken() -> None:
            raise KeyError("k")

        async with pool.session("s") as s:
            await s.execute("acall", {"name": "slow", "args": {"seconds": 5}})
        await pool.execute("acall", {"name": "broken", "args": None})
        names = [name for name, _, _ in seen]
        assert names == [
            "host_tool.start",
            "host_tool.stop",
            "host_tool.start",
            "host_tool.exception",
            "host_tool.stop",
        ]
        _, first, about = seen[1]
        assert first == {"duration": 5} and about["outcome"] == "ok"
        assert (
            about["tool"] == "slow"
            and about["session_id"] == "s"
            and about["pool"] == pool.config.name
        )
        assert seen[3][2]["error_type"] == "KeyError" and seen[4][2]["outcome"] == "remote"
