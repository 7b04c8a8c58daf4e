"""An adapter whose long call leaves a mark when it starts and when it is cancelled, so a
test can tell a call cancelled by a lost host from one that ran on (``--orphan-timeout``)."""

from __future__ import annotations

import asyncio
import os
import pathlib
import time
from collections.abc import AsyncIterator

from snakepit_trio.worker import tool

from .basic import Echo


class Marked(Echo):
    @tool
    async def marked(self, marker: str, seconds: float = 3600) -> str:
        """Write "started" to ``marker``, sleep, and write "cancelled" if cancelled."""
        path = pathlib.Path(marker)
        path.write_text("started")  # noqa: ASYNC240 (a tiny write in a test)
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            path.write_text("cancelled")  # noqa: ASYNC240
            raise
        return "slept"

    @tool
    async def held_pid(self, seconds: float) -> int:
        """This worker's pid, after holding its slot for ``seconds``."""
        await asyncio.sleep(seconds)
        return os.getpid()

    @tool
    def stubborn(self, marker: str, seconds: float = 3600) -> str:
        """Write "started" to ``marker``, then sleep ``seconds`` ignoring cancellation."""
        pathlib.Path(marker).write_text("started")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.05)
        return "slept"

    @tool
    async def marked_stream(self, marker: str) -> AsyncIterator[int]:
        """Write "started" to ``marker``, yield once, wait; write "closed" when closed."""
        path = pathlib.Path(marker)
        path.write_text("started")  # noqa: ASYNC240
        try:
            yield 0
            await asyncio.sleep(3600)
        finally:
            path.write_text("closed")  # noqa: ASYNC240
