"""Adapters for the pool layer: async tools (virtual time), observable from the test."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from snakepit_trio.worker import Adapter, ToolContext, tool

# The workers run in the test's process: tests read what the tools did here.
EVENTS: list[tuple[str, Any]] = []
# Called with the loop's (virtual) time whenever a worker's adapter starts.
ON_START: list[Callable[[float], None]] = []
SERIALS = itertools.count(1)  # each adapter instance (one per worker incarnation) takes one
START_DELAY = [0.0]  # seconds (virtual) each adapter's initialize() takes
# Calls of each key made to `flaky` (and `running`: calls of `gauge` running now), whichever
# worker ran them; tests reset what they use.
TRIES: dict[str, int] = {}
RUNNING = {"now": 0, "peak": 0}


class Tools(Adapter):
    async def initialize(self) -> None:
        self.calls = 0
        self.incarnation = next(SERIALS)
        if START_DELAY[0]:
            await asyncio.sleep(START_DELAY[0])
        now = asyncio.get_running_loop().time()
        for hook in ON_START:
            hook(now)

    @tool
    def whoami(self) -> int:
        return id(self)

    @tool
    def echo(self, value: Any = None) -> Any:
        self.calls += 1
        return value

    @tool
    def serial(self) -> int:
        """Which worker incarnation ran the call (unique, unlike id())."""
        return self.incarnation

    @tool
    async def sleep(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "slept"

    @tool
    async def stubborn(self, seconds: float) -> str:
        """Ignores cancellation until ``seconds`` have passed."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                await asyncio.sleep(end - loop.time())
            except asyncio.CancelledError:
                EVENTS.append(("ignored cancel", loop.time()))
        return "done"

    @tool
    def fail(self, message: str) -> None:
        raise ValueError(message)

    @tool
    async def remaining(self, ctx: ToolContext) -> float | None:
        return ctx.time_remaining()

    @tool
    async def report(self, steps: int, ctx: ToolContext) -> int:
        for i in range(steps):
            ctx.progress(i + 1, steps, f"step {i + 1}")
            await asyncio.sleep(1)
        return steps

    @tool(streaming=True)
    def count(self, n: int) -> Iterator[int]:
        for i in range(n):
            EVENTS.append(("produced", i))
            yield i

    @tool(streaming=True)
    async def ticks(self, n: int, every: float) -> AsyncIterator[int]:
        try:
            for i in range(n):
                await asyncio.sleep(every)
                yield i
        finally:
            EVENTS.append(("ticks closed", asyncio.get_running_loop().time()))

    @tool
    def flaky(self, key: str, failures: int, value: Any = None) -> Any:
        """Raises ValueError for the first ``failures`` calls with this key, then returns."""
        TRIES[key] = TRIES.get(key, 0) + 1
        if TRIES[key] <= failures:
            raise ValueError(f"{key}: failure {TRIES[key]} of {failures}")
        return value

    @tool
    async def gauge(self, value: Any = None, seconds: float = 1.0) -> Any:
        """Counts the calls running at once (``RUNNING``), takes ``seconds``, then returns
        ``value`` (raises ValueError for "fail"); a cancel is noted in EVENTS."""
        RUNNING["now"] += 1
        RUNNING["peak"] = max(RUNNING["peak"], RUNNING["now"])
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            EVENTS.append(("gauge cancelled", value))
            raise
        finally:
            RUNNING["now"] -= 1
        if value == "fail":
            raise ValueError("gauge asked to fail")
        return value

    @tool
    def mixed(self, value: Any = None) -> Any:
        """Returns ``value``; "raise" raises ValueError, "object" returns what cannot travel."""
        TRIES["mixed"] = TRIES.get("mixed", 0) + 1
        if value == "raise":
            raise ValueError("asked to raise")
        if value == "object":
            return object()
        return value

    @tool
    def text(self, n: int) -> str:
        return "x" * n

    @tool
    def calls_here(self) -> int:
        return self.calls

    async def on_session_end(self, session_id: str) -> None:
        EVENTS.append(("session end", session_id))
        EVENTS.append(("session end at", asyncio.get_running_loop().time()))


class FailsToStart(Adapter):
    async def initialize(self) -> None:
        raise RuntimeError("no model at /nowhere")

    @tool
    def echo(self, value: Any = None) -> Any:
        return value


ON_FIT: list[Callable[[], None]] = []  # called as each Compute.fit begins


class Compute(Adapter):
    """A second pool's adapter: ``fit`` is its own, ``echo`` it shares with Tools."""

    @tool
    async def fit(self, n: int) -> int:
        for hook in ON_FIT:
            hook()
        await asyncio.sleep(n)
        return n * 2

    @tool
    def echo(self, value: Any = None) -> Any:
        return ["compute", value]

    @tool(streaming=True)
    async def epochs(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(1)
            yield i
