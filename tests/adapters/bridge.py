"""Tools that call host tools (the host registers them in the tests)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from snakepit_trio import HostToolError, InvalidVariable
from snakepit_trio.worker import Adapter, ToolContext, tool


def _failure(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, HostToolError):
        return {
            "error": type(exc).__name__,
            "kind": exc.kind,
            "remote_type": exc.remote_type,
            "message": exc.remote_message,
        }
    if isinstance(exc, InvalidVariable):
        return {"error": "InvalidVariable", "constraint": exc.constraint, "message": str(exc)}
    return {"error": type(exc).__name__, "message": str(exc)}


class Bridge(Adapter):
    @tool
    def call(self, name: str, args: dict[str, Any] | None, ctx: ToolContext) -> Any:
        """A sync tool calls host tool ``name``; what it got, or how it failed."""
        try:
            return {"value": ctx.call_host_tool(name, args)}
        except Exception as exc:
            return _failure(exc)

    @tool
    async def acall(self, name: str, args: dict[str, Any] | None, ctx: ToolContext) -> Any:
        try:
            return {"value": await ctx.acall_host_tool(name, args)}
        except Exception as exc:
            return _failure(exc)

    @tool
    def proxy(self, key: str, ctx: ToolContext) -> Any:
        return ctx.host.lookup(key=key)

    @tool
    async def aproxy(self, key: str, ctx: ToolContext) -> Any:
        return await ctx.ahost.lookup(key=key)

    @tool
    def listing(self, ctx: ToolContext) -> list[str]:
        return sorted(ctx.host_tools())

    @tool
    async def alisting(self, ctx: ToolContext) -> dict[str, Any]:
        return await ctx.ahost_tools()

    @tool
    async def blocking_on_loop(self, ctx: ToolContext) -> Any:
        """The blocking form on the event loop's thread: refused at once."""
        try:
            ctx.call_host_tool("lookup", {"key": "k"})
        except RuntimeError as exc:
            return {"error": "RuntimeError", "message": str(exc)}
        return {"error": None}

    @tool
    def blocked(self, name: str, report: str, ctx: ToolContext) -> Any:
        """Waits in host tool ``name``; writes how that wait ended to ``report``."""
        try:
            outcome: dict[str, Any] = {"value": ctx.call_host_tool(name)}
        except Exception as exc:
            outcome = _failure(exc)
        with open(report + ".tmp", "w") as f:
            f.write(repr(outcome))
        os.replace(report + ".tmp", report)
        return outcome

    @tool
    def variables(self, name: str, delta: int, ctx: ToolContext) -> Any:
        try:
            before = ctx.session.get_variable(name)
            ctx.session.set_variable(name, before + delta)
            return {"before": before, "after": ctx.session.get_variable(name)}
        except Exception as exc:
            return _failure(exc)

    @tool
    async def avariables(self, name: str, value: Any, ctx: ToolContext) -> Any:
        try:
            await ctx.session.aset_variable(name, value)
            return {"value": await ctx.session.aget_variable(name)}
        except Exception as exc:
            return _failure(exc)

    @tool
    def pid(self) -> int:
        return os.getpid()

    @tool
    def napping(self, seconds: float) -> int:
        time.sleep(seconds)
        return os.getpid()

    @tool
    async def forge(self, call_id: int, name: str, ctx: ToolContext) -> None:
        """Sends a HOST_CALL naming another call's id (as a compromised worker could)."""
        import asyncio

        from snakepit_trio._shared import _frames as w

        assert ctx._host is not None
        ctx._host._emit(w.host_call(999, call_id, name, b""))
        await asyncio.sleep(60)  # the host replaces this worker first

    @tool
    def gen_host(self, name: str, ctx: ToolContext) -> Iterator[Any]:
        """A sync generator that waits in a host tool while it streams."""
        yield ctx.call_host_tool(name)

    @tool
    def gen_plain(self, n: int) -> Iterator[int]:
        yield from range(n)

    @tool
    async def forge_twice(self, name: str, ctx: ToolContext) -> None:
        """Opens two host calls with one id (as a broken worker could)."""
        import asyncio

        from snakepit_trio._shared import _frames as w

        assert ctx._host is not None
        ctx._host._emit(w.host_call(999, ctx.request_id, name, b""))
        ctx._host._emit(w.host_call(999, ctx.request_id, name, b""))
        await asyncio.sleep(60)  # the host replaces this worker first
