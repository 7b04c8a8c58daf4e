"""Adapters used by the end-to-end tests (imported inside real worker processes)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import time

from snakepit_trio.worker import Adapter, ToolContext, tool


class Echo(Adapter):
    @tool(description="Return the value unchanged")
    def echo(self, value: object = None) -> object:
        return value

    @tool
    async def aecho(self, value: object = None) -> object:
        return value

    @tool
    def add(self, a: int, b: int = 1) -> int:
        """Add two integers."""
        return a + b

    @tool
    def fail(self, message: str = "boom") -> None:
        raise ValueError(message)

    @tool
    def pid(self) -> int:
        return os.getpid()

    @tool
    def modules(self) -> list[str]:
        return sorted(name for name in sys.modules if name.split(".")[0] in {"trio", "outcome"})

    @tool
    def loaded(self, names: list[str]) -> list[str]:
        """Which of ``names`` this process has imported."""
        return [name for name in names if name in sys.modules]

    @tool
    def argv(self) -> list[str]:
        return list(sys.argv)

    @tool
    def sleep(self, seconds: float, ctx: ToolContext) -> str:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if ctx.cancelled:
                return "cancelled"
            time.sleep(0.005)
        return "slept"

    @tool
    async def asleep(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "slept"

    @tool
    def crash(self, code: int = 1) -> None:
        os._exit(code)

    @tool
    def big(self, size: int) -> bytes:
        return b"x" * size

    @tool
    def unencodable(self) -> object:
        return object()

    @tool
    def count(self, n: int):  # type: ignore[no-untyped-def]
        yield from range(n)

    @tool
    def context(self, ctx: ToolContext) -> dict[str, object]:
        return {
            "request_id": ctx.request_id,
            "session_id": ctx.session_id,
            "remaining": ctx.time_remaining(),
        }

    @tool
    def steps(self, n: int, ctx: ToolContext) -> int:
        for i in range(n):
            ctx.progress(i + 1, n, f"step {i + 1}")
        return n

    @tool
    def ticks(self, n: int, ctx: ToolContext):  # type: ignore[no-untyped-def]
        for i in range(n):
            ctx.progress(i + 1, n)
            yield i

    @tool
    def grow(self, megabytes: int) -> int:
        """Keeps megabytes of memory alive in this worker (a leak)."""
        self.leak = bytearray(megabytes * 2**20)
        for i in range(0, len(self.leak), 4096):
            self.leak[i] = 1  # touch every page so it counts in RSS
        return len(self.leak)

    @tool
    def hold_gil(self, seconds: int) -> str:
        """Blocks in C code without releasing the GIL: the worker's event loop stops too."""
        ctypes.PyDLL(None).sleep(seconds)  # PyDLL keeps the GIL during the call
        return "done"

    @tool
    async def block_loop(self, seconds: float) -> str:
        """An async tool that blocks its event loop (a common bug)."""
        time.sleep(seconds)  # noqa: ASYNC251 - the bug this tool reproduces
        return "done"

    @tool
    def stubborn(self, seconds: float) -> str:
        """Ignores cancellation, like code stuck in a C extension."""
        time.sleep(seconds)
        return "done"


class Buffers(Adapter):
    """Large payloads, for the shared-memory tests."""

    @tool
    def echo(self, value: object = None) -> object:
        return value

    @tool
    def hold_until_cancelled(self, value: object, ctx: ToolContext) -> None:
        """Keep the argument (a view of the host's shared memory) until the call is cancelled."""
        while not ctx.cancelled:
            time.sleep(0.005)
        del value

    @tool
    def mapped(self, value: object, seconds: float = 0.0) -> tuple[int, bool]:
        """This worker's pid, and whether ``value`` (an array) arrived as a view of shared
        memory rather than a copy; after ``seconds`` of work, so calls at once spread."""
        import mmap

        time.sleep(seconds)
        base = getattr(value, "base", None)
        while base is not None and not isinstance(base, mmap.mmap):
            base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
        return os.getpid(), isinstance(base, mmap.mmap)

    @tool
    def keep(self, value: object) -> None:
        """Hold on to an argument (a view of the host's shared memory) after the call."""
        self.kept = value

    @tool
    def kept_sum(self) -> float:
        return float(self.kept.sum())  # type: ignore[attr-defined]

    @tool
    def array(self, n: int) -> object:
        import numpy as np

        return np.arange(n, dtype=np.float64)

    @tool
    def arrays(self, n: int, count: int):  # type: ignore[no-untyped-def]
        import numpy as np

        for i in range(count):
            yield np.full(n, i, dtype=np.float64)

    @tool
    def leave_segment_and_die(self) -> None:
        """As if a result went to shared memory and the worker died before sending it."""
        from snakepit_trio._shared import _shm
        from snakepit_trio._shared._tagging import POOL_TOKEN, WORKER_ID

        prefix = _shm.prefix(os.environ[POOL_TOKEN], os.environ[WORKER_ID])
        _shm.create(prefix, memoryview(b"x" * 4096))
        os._exit(1)
