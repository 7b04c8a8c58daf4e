"""A per-session stateful adapter for the session tests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from snakepit_trio.worker import Adapter, ToolContext, tool


class Counter(Adapter):
    async def initialize(self) -> None:
        self.counts: dict[str, int] = {}
        self.order: list[int] = []
        self.ended: list[str] = []

    @tool
    def incr(self, ctx: ToolContext) -> dict[str, object]:
        key = ctx.session_id or "-"
        self.counts[key] = self.counts.get(key, 0) + 1
        self.order.append(ctx.request_id)
        return {"count": self.counts[key], "pid": os.getpid(), "session": ctx.session_id}

    @tool
    def hold(self, seconds: float, ctx: ToolContext) -> int:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not ctx.cancelled:
            time.sleep(0.002)
        return os.getpid()

    @tool
    def state(self) -> dict[str, object]:
        return {"counts": self.counts, "order": self.order, "ended": self.ended}

    @tool
    def countdown(self, n: int, ctx: ToolContext) -> Iterator[dict[str, object]]:
        for i in range(n, 0, -1):
            yield {"left": i, "session": ctx.session_id, "pid": os.getpid()}

    async def on_session_end(self, session_id: str) -> None:
        self.ended.append(session_id)
        self.counts.pop(session_id, None)
