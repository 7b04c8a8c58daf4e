"""The contract suite's adapter (tests/contract/); ``contract.mjs`` is its twin for Node.js.

Both declare the same tools with the same parameters and behave the same, so one test runs
against either runtime. Keep them in step: a tool added here is added there.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from snakepit_trio.worker import Adapter, ToolContext, tool
from tests.adapters import user_types  # noqa: F401 - registers Point (code 40) in the worker


class Contract(Adapter):
    async def initialize(self) -> None:
        self.counts: dict[str, int] = {}
        self.ended: list[str] = []
        self.leak: list[bytes] = []

    @tool(description="Return the value unchanged")
    async def echo(self, value: Any = None) -> Any:
        return value

    @tool
    async def add(self, a: int, b: int = 1) -> int:
        return a + b

    @tool
    async def fail(self, message: str = "boom") -> None:
        raise ValueError(message)

    @tool
    async def sleep(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "slept"

    @tool
    async def pid(self) -> int:
        return os.getpid()

    @tool
    async def crash(self, code: int = 1) -> None:
        os._exit(code)

    @tool
    async def big(self, size: int) -> bytes:
        return b"x" * size

    @tool
    async def unencodable(self) -> Any:
        return object()

    @tool
    async def context(self, ctx: ToolContext) -> dict[str, Any]:
        return {
            "request_id": ctx.request_id,
            "session_id": ctx.session_id,
            "remaining": ctx.time_remaining(),
        }

    @tool
    async def steps(self, n: int, ctx: ToolContext) -> int:
        for i in range(n):
            ctx.progress(i + 1, n, f"step {i + 1}")
        return n

    @tool
    async def count(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    @tool
    async def ticks(self, n: int, ctx: ToolContext) -> AsyncIterator[int]:
        for i in range(n):
            ctx.progress(i + 1, n)
            yield i

    @tool
    async def stall(self, first: int) -> AsyncIterator[int]:
        """Yield ``first``, then wait until closed or cancelled."""
        yield first
        await asyncio.Event().wait()

    @tool
    async def raise_after(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i
        raise ValueError(f"after {n}")

    @tool
    async def incr(self, ctx: ToolContext) -> dict[str, Any]:
        key = ctx.session_id or "-"
        self.counts[key] = self.counts.get(key, 0) + 1
        return {"count": self.counts[key], "pid": os.getpid(), "session": ctx.session_id}

    @tool
    async def ended(self) -> list[str]:
        return self.ended

    @tool
    async def block(self, seconds: float) -> str:
        """Block the worker's event loop (a tool that never yields): heartbeats stop."""
        time.sleep(seconds)  # noqa: ASYNC251 - the fault this tool reproduces
        return "done"

    @tool
    async def grow(self, megabytes: int) -> int:
        """Keep ``megabytes`` more of touched memory alive in this worker."""
        self.leak.append(os.urandom(megabytes * 2**20))
        return sum(len(b) for b in self.leak)

    @tool
    async def host(self, name: str, args: dict[str, Any] | None, ctx: ToolContext) -> Any:
        """Call the host tool ``name``; its error comes back as a map, not raised."""
        try:
            return {"ok": await ctx.acall_host_tool(name, args)}
        except Exception as exc:  # the test checks what the worker saw
            return {"error": type(exc).__name__, "kind": getattr(exc, "kind", None)}

    @tool
    async def host_list(self, ctx: ToolContext) -> list[str]:
        return sorted(await ctx.ahost_tools())

    @tool
    async def emit(self, name: str, value: float, ctx: ToolContext) -> None:
        ctx.emit(name, {"value": value}, {"source": "contract"})

    async def on_session_end(self, session_id: str) -> None:
        self.ended.append(session_id)
        self.counts.pop(session_id, None)
