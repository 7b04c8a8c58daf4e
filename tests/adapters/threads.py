"""Adapters for the thread profile: tools that record how many run at once, and a bank whose
invariants hold only if its tools are really thread-safe."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

from snakepit_trio.worker import Adapter, ToolContext, tool


class Counted(Adapter):
    """Every tool counts itself while it runs: ``peak`` is the most that ever ran at once,
    whatever their kind; ``overlaps`` counts exclusive calls that began while another call
    of the same tool ran."""

    thread_safe = True

    async def initialize(self) -> None:
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.inside: dict[str, int] = {}
        self.overlaps = 0

    def _enter(self, name: str = "") -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            if name:
                self.inside[name] = self.inside.get(name, 0) + 1
                if self.inside[name] > 1:
                    self.overlaps += 1

    def _leave(self, name: str = "") -> None:
        with self._lock:
            self.running -= 1
            if name:
                self.inside[name] -= 1

    @tool
    def sync_work(self, seconds: float) -> str:
        self._enter()
        try:
            time.sleep(seconds)
        finally:
            self._leave()
        return "sync"

    @tool
    async def async_work(self, seconds: float) -> str:
        self._enter()
        try:
            await asyncio.sleep(seconds)
        finally:
            self._leave()
        return "async"

    @tool
    def sync_stream(self, n: int, seconds: float) -> Iterator[int]:
        self._enter()
        try:
            for i in range(n):
                time.sleep(seconds)
                yield i
        finally:
            self._leave()

    @tool
    async def async_stream(self, n: int, seconds: float) -> AsyncIterator[int]:
        self._enter()
        try:
            for i in range(n):
                await asyncio.sleep(seconds)
                yield i
        finally:
            self._leave()

    @tool(exclusive=True)
    def exclusive_sync(self, seconds: float) -> str:
        self._enter("exclusive_sync")
        try:
            time.sleep(seconds)
        finally:
            self._leave("exclusive_sync")
        return "alone"

    @tool(exclusive=True)
    async def exclusive_async(self, seconds: float) -> str:
        self._enter("exclusive_async")
        try:
            await asyncio.sleep(seconds)
        finally:
            self._leave("exclusive_async")
        return "alone"

    @tool(exclusive=True)
    def exclusive_cancellable(self, seconds: float, ctx: ToolContext) -> str:
        self._enter("exclusive_cancellable")
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end and not ctx.cancelled:
                time.sleep(0.005)
        finally:
            self._leave("exclusive_cancellable")
        return "alone"

    @tool
    def counts(self) -> dict[str, int]:
        """Not counted itself (it would count as running)."""
        with self._lock:
            return {"peak": self.peak, "overlaps": self.overlaps, "running": self.running}


class Undeclared(Adapter):
    """Sync tools, and no thread_safe declaration."""

    @tool
    def work(self, value: int) -> int:
        return value

    @tool
    async def awork(self, value: int) -> int:
        return value


class AsyncOnly(Adapter):
    """Nothing runs in threads: worker_capacity > 1 needs no declaration."""

    @tool
    async def work(self, value: int) -> int:
        return value


class Bank(Adapter):
    """Accounts moved between under a lock; the work around each move runs unlocked, in
    parallel threads. The total never changes and no balance goes below zero."""

    thread_safe = True
    ACCOUNTS = 8
    START = 1000

    async def initialize(self) -> None:
        self._lock = threading.Lock()
        self.balances = [self.START] * self.ACCOUNTS
        self.active = 0
        self.peak = 0

    @tool
    def transfer(self, source: int, target: int, amount: int, work: float) -> bool:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(work)  # unlocked: other transfers run meanwhile
            with self._lock:
                if self.balances[source] < amount:
                    return False
                self.balances[source] -= amount
                time.sleep(0)  # a switch here would expose a missing lock
                self.balances[target] += amount
                return True
        finally:
            with self._lock:
                self.active -= 1

    @tool
    def audit(self) -> dict[str, object]:
        with self._lock:
            return {"balances": list(self.balances), "peak": self.peak}
