"""Streaming tools used by the end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import pathlib
import time
from collections.abc import AsyncIterator, Iterator

from snakepit_trio.worker import Adapter, ToolContext, tool


class Streams(Adapter):
    @tool
    def count(self, n: int) -> Iterator[int]:
        yield from range(n)

    @tool
    async def acount(self, n: int, delay: float = 0.0) -> AsyncIterator[int]:
        for i in range(n):
            if delay:
                await asyncio.sleep(delay)
            yield i

    @tool
    def produce(self, n: int, ctx: ToolContext) -> Iterator[int]:
        """Reports each item as progress before yielding it (progress is not flow-controlled)."""
        for i in range(n):
            ctx.progress(i + 1, n)
            yield i

    @tool
    def guarded(self, marker: str) -> Iterator[int]:
        i = 0
        try:
            while True:
                yield i
                i += 1
        finally:
            pathlib.Path(marker).write_text("closed")

    @tool
    async def aguarded(self, marker: str) -> AsyncIterator[int]:
        i = 0
        try:
            while True:
                await asyncio.sleep(0.001)
                yield i
                i += 1
        finally:
            pathlib.Path(marker).write_text("closed")  # noqa: ASYNC240 (a tiny write in a test)

    @tool
    def crash_after(self, n: int, marker: str) -> Iterator[int]:
        """Yields n chunks, then dies once the consumer creates ``marker`` (it has them all)."""
        yield from range(n)
        while not os.path.exists(marker):
            time.sleep(0.005)
        os._exit(9)

    @tool
    def raise_after(self, n: int) -> Iterator[int]:
        yield from range(n)
        raise RuntimeError(f"failed after {n}")

    @tool
    async def stall(self, first: int) -> AsyncIterator[int]:
        for i in range(first):
            yield i
        await asyncio.sleep(3600)
        yield -1

    @tool
    def unary(self) -> int:
        return 1
