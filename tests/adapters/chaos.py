"""The chaos suite's adapter: every run of a call is logged, so double runs can be counted.

Each call carries a unique token; the tool appends it to the file named by
$SNAKEPIT_CHAOS_LOG before working (one short O_APPEND write per run: atomic).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator

from snakepit_trio.worker import Adapter, ToolContext, tool


def _ran(token: str) -> None:
    fd = os.open(os.environ["SNAKEPIT_CHAOS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{token}\n".encode())
    finally:
        os.close(fd)


class Chaos(Adapter):
    async def initialize(self) -> None:
        self.counters: dict[str, int] = {}

    @tool
    def work(self, token: str, seconds: float, ctx: ToolContext) -> str:
        _ran(token)
        end = time.monotonic() + seconds
        while time.monotonic() < end and not ctx.cancelled:
            time.sleep(0.002)
        return token

    @tool
    async def awork(self, token: str, seconds: float) -> str:
        _ran(token)
        await asyncio.sleep(seconds)
        return token

    @tool
    def via_host(self, token: str, seconds: float, ctx: ToolContext) -> str:
        """Runs once, then waits in the host's ``echo_back`` (a sync tool blocks its thread)."""
        _ran(token)
        return str(ctx.call_host_tool("echo_back", {"token": token, "seconds": seconds}))

    @tool
    async def avia_host(self, token: str, seconds: float, ctx: ToolContext) -> str:
        _ran(token)
        return str(await ctx.acall_host_tool("echo_back", {"token": token, "seconds": seconds}))

    @tool
    def numbers(self, token: str, n: int) -> Iterator[int]:
        _ran(token)
        for i in range(n):
            if i % 10 == 0:
                time.sleep(0.001)
            yield i

    @tool
    async def anumbers(self, token: str, n: int) -> AsyncIterator[int]:
        _ran(token)
        for i in range(n):
            if i % 10 == 0:
                await asyncio.sleep(0.001)
            yield i

    @tool
    def incr(self, token: str, ctx: ToolContext) -> int:
        _ran(token)
        key = ctx.session_id or ""
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]

    async def on_session_end(self, session_id: str) -> None:
        self.counters.pop(session_id, None)
