"""An adapter that emits telemetry (ctx.emit, ctx.span, emit outside calls) and reports its
trace context; used by the pool-layer (in memory) and end-to-end (processes) tests."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from snakepit_trio._shared import _frames as w
from snakepit_trio.worker import Adapter, ToolContext, emit, span, tool
from snakepit_trio.worker._events import trace_meta


class Telemetry(Adapter):
    async def initialize(self) -> None:
        with span("load", model="small"):
            emit("loaded", {"seconds": 0.25, "bytes": 1 << 20}, {"model": "small"})

    @tool
    def infer(self, tokens: int, ctx: ToolContext) -> int:
        ctx.emit("inference", {"tokens": tokens}, {"model": "small", "pool": "spoofed"})
        return tokens

    @tool
    async def ainfer(self, tokens: int, ctx: ToolContext) -> int:
        ctx.emit("inference", {"tokens": tokens})
        return tokens

    @tool
    def spanned(self, fail: bool, ctx: ToolContext) -> str:
        with ctx.span("prep", stage="tokenize", batch=4):
            if fail:
                raise ValueError("bad input")
        return "ok"

    @tool
    def sleep(self, seconds: float) -> str:
        time.sleep(seconds)
        return "slept"

    @tool
    async def asleep(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "slept"

    @tool
    def threads(self, n: int, ctx: ToolContext) -> int:
        """``n`` threads of the tool's own emit at once (the frames cross to the loop)."""

        def one(i: int) -> None:
            for j in range(10):
                ctx.emit("step", {"i": i, "j": j})

        workers = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        return n * 10

    @tool
    def background(self) -> None:
        """An event from a thread of the adapter's own, outside any call."""
        t = threading.Thread(target=emit, args=("background", {"n": 1}, {"source": "thread"}))
        t.start()
        t.join()

    @tool
    def bad_emit(self, kind: str, ctx: ToolContext) -> None:
        if kind == "name":
            ctx.emit("no spaces allowed")
        elif kind == "measurement":
            ctx.emit("x", {"tokens": "many"})
        elif kind == "bool":
            ctx.emit("x", {"ok": True})
        elif kind == "nan":
            ctx.emit("x", {"v": float("nan")})
        elif kind == "metadata":
            ctx.emit("x", {}, {"items": [1, 2]})
        elif kind == "key":
            ctx.emit("x", {1: 2})  # type: ignore[dict-item]
        elif kind == "span":
            ctx.span("x", where=object())  # type: ignore[arg-type]

    @tool
    def rogue_event(self, ctx: ToolContext) -> None:
        """Send an EVENT frame that breaks the protocol, bypassing the checks."""
        route = ctx._route
        assert route is not None
        route.send(w.event(ctx.request_id, "x", {"v": "not a number"}, {}, 0.0))

    @tool(streaming=True)
    def count(self, n: int):  # type: ignore[no-untyped-def]
        yield from range(n)

    @tool(streaming=True)
    async def acount(self, n: int, ctx: ToolContext):  # type: ignore[no-untyped-def]
        for i in range(n):
            with ctx.span("chunk"):
                yield i

    @tool
    def crash(self) -> None:
        os._exit(1)

    @tool
    def pid(self) -> int:
        return os.getpid()

    @tool
    def meta(self, ctx: ToolContext) -> Any:
        """The call's trace context as a meta map, at the top and inside a span."""
        outer = trace_meta(ctx)
        with ctx.span("inner"):
            inner = trace_meta(ctx)
        return {"outer": outer, "inner": inner}

    @tool
    async def ameta(self, ctx: ToolContext) -> Any:
        return trace_meta(ctx)

    @tool
    def modules(self) -> list[str]:
        import sys

        return sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
