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
