"""The worker side of the quick start: an adapter whose tools run in worker processes."""

from __future__ import annotations

import asyncio
import collections
import os

from snakepit_trio.worker import Adapter, ToolContext, tool


class TextTools(Adapter):
    async def initialize(self) -> None:
        # Load models, open files, warm caches here: runs once per worker, before READY.
        self.stopwords = {"the", "a", "an", "and", "of", "to", "in"}

    @tool(description="Count the words of a text, ignoring stopwords")
    def word_count(self, text: str, top: int = 3) -> dict[str, object]:
        words = [w.strip(".,!?").lower() for w in text.split()]
        counts = collections.Counter(w for w in words if w and w not in self.stopwords)
        return {"worker_pid": os.getpid(), "top": counts.most_common(top)}

    @tool
    async def slow_square(self, x: int, ctx: ToolContext) -> int:
        await asyncio.sleep(0.05)
        return x * x

    @tool
    def divide(self, a: float, b: float) -> float:
        return a / b
