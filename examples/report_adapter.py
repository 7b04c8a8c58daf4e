"""Worker side of the streaming example: a generator that reports progress."""

from __future__ import annotations

import time
from collections.abc import Iterator

from snakepit_trio.worker import Adapter, ToolContext, tool


class Reports(Adapter):
    @tool(description="Summarise rows one by one, reporting progress")
    def summarise(self, rows: int, ctx: ToolContext) -> Iterator[dict[str, object]]:
        for i in range(rows):
            time.sleep(0.01)  # stands in for real work on one row
            ctx.progress(i + 1, rows, f"row {i + 1}")
            yield {"row": i, "score": (i * 37) % 100}
