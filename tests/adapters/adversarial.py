"""Adapters for the adversarial suite (tests/adversarial/): tools that misbehave on purpose.

``Storm`` serves both layers: in memory (its async tools and streams run on the virtual
clock) and in worker processes (its sync tools run in threads and ignore cancellation for a
while, as code stuck in C does). The other classes break the worker itself: its output, its
start, its stop, the exceptions its tools raise, its sessions.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from snakepit_trio.worker import Adapter, ToolContext, tool
from tests.adapters.faults import Faults
from tests.adapters.faults import _raise as raise_

SERIALS = itertools.count(1)  # in memory: one per adapter instance (worker incarnation)
# Which calls began to run, by the token the test gave each: in memory, read here; in worker
# processes, one line per start appended to the file $SNAKEPIT_ADVERSARIAL_LOG names.
STARTED: collections.Counter[str] = collections.Counter()
LOG = "SNAKEPIT_ADVERSARIAL_LOG"


def started(token: str) -> None:
    if not token:
        return
    STARTED[token] += 1
    path = os.environ.get(LOG)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{token}\n".encode())  # one short write: lines never interleave
        finally:
            os.close(fd)


class Storm(Adapter):
    async def initialize(self) -> None:
        self.serial_number = next(SERIALS)

    @tool
    def echo(self, value: Any = None, token: str = "") -> Any:
        started(token)
        return value

    @tool
    def pid(self, token: str = "") -> int:
        started(token)
        return os.getpid()

    @tool
    def serial(self) -> int:
        """Which worker incarnation ran the call (in memory every worker has our pid)."""
        return self.serial_number

    @tool
    async def sleep(self, seconds: float, token: str = "") -> str:
        started(token)
        await asyncio.sleep(seconds)
        return "slept"

    @tool
    async def stubborn(self, seconds: float, token: str = "") -> str:
        """Ignores cancellation until ``seconds`` have passed on the loop's clock."""
        started(token)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                await asyncio.sleep(end - loop.time())
            except asyncio.CancelledError:
                pass
        return "done"

    @tool
    def spin(self, seconds: float, token: str = "") -> str:
        """A sync tool that ignores cancellation for ``seconds`` (it never looks at it)."""
        started(token)
        time.sleep(seconds)
        return "spun"

    @tool
    def stuck_until(self, path: str, token: str = "") -> str:
        """Ignores cancellation until ``path`` exists (the test says when, not a timer)."""
        started(token)
        while not os.path.exists(path):
            time.sleep(0.002)
        return "released"

    @tool
    def count(self, n: int, token: str = "") -> Iterator[int]:
        started(token)
        yield from range(n)

    @tool
    async def ticks(self, n: int, every: float, token: str = "") -> AsyncIterator[int]:
        started(token)
        for i in range(n):
            await asyncio.sleep(every)
            yield i

    @tool
    def crash(self, code: int = 1) -> None:
        os._exit(code)

    @tool
    def fail(self, message: str = "boom") -> None:
        raise ValueError(message)

    @tool
    def progress_sized(self, size: int, ctx: ToolContext) -> str:
        """Report progress with a message ``size`` characters long, then return."""
        ctx.progress(1, 2, "x" * size)
        return "reported"

    @tool
    def progress_odd(self, what: str, ctx: ToolContext) -> str:
        """Report progress with values of the wrong types (what users pass by mistake)."""
        if what == "text done":
            ctx.progress("half")  # type: ignore[arg-type]
        elif what == "object message":
            ctx.progress(1, 2, object())  # type: ignore[arg-type]
        elif what == "nan":
            ctx.progress(float("nan"), float("inf"), "odd numbers")
        elif what == "huge int":
            ctx.progress(10**30, None, None)
        return "reported"

    @tool
    def fail_sized(self, size: int) -> None:
        """Raise an exception whose message is ``size`` characters long (as one that
        quotes a large input does)."""
        raise ValueError("x" * size)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Unruly(Storm):
    """A worker that abuses its own output (and has every tool of Storm besides)."""

    @tool
    def flood(self, kilobytes: int) -> int:
        """Write ``kilobytes`` lines of 1 KiB to stdout and to stderr, interleaved."""
        line = b"x" * 1023 + b"\n"
        for _ in range(kilobytes):
            _write_all(1, line)
            _write_all(2, line)
        return kilobytes

    @tool
    def close_output(self) -> int:
        """Close the worker's own stdout and stderr, for good."""
        sys.stdout.flush()
        sys.stderr.flush()
        os.close(1)
        os.close(2)
        return os.getpid()

    @tool
    def print_anyway(self, text: str) -> str:
        """Write to stdout and stderr whatever state they are in; the call goes on."""
        for stream in (sys.stdout, sys.stderr):
            try:
                print(text, file=stream, flush=True)
            except OSError:
                pass
        return text

    @tool
    def fork_holder_and_die(self, pid_file: str, die_of: int = 0, code: int = 0) -> None:
        """Fork a child that keeps every descriptor of the worker (its pipes, its
        connection) and sleeps; write its pid to ``pid_file``; then die of signal
        ``die_of``, or exit with ``code``."""
        child = os.fork()
        if child == 0:
            time.sleep(600)
            os._exit(0)
        with open(pid_file, "w") as f:
            f.write(str(child))
        print(f"about to die, leaving child {child}", file=sys.stderr, flush=True)
        if die_of:
            os.kill(os.getpid(), die_of)
            time.sleep(600)  # another thread may be the one it is delivered to
        os._exit(code)


class HangsInInitialize(Adapter):
    async def initialize(self) -> None:
        await asyncio.sleep(3600)

    @tool
    def noop(self) -> None:
        return None


class HangsInCleanup(Adapter):
    async def cleanup(self) -> None:
        await asyncio.sleep(3600)

    @tool
    def pid(self) -> int:
        return os.getpid()


class BlocksInCleanup(Adapter):
    """A cleanup that blocks the worker's event loop itself (a sync call in async code)."""

    async def cleanup(self) -> None:
        time.sleep(3600)  # noqa: ASYNC251 - the bug this adapter reproduces

    @tool
    def pid(self) -> int:
        return os.getpid()


class IgnoresSigterm(Adapter):
    # The worker installs its own SIGTERM handler after initialize(); a tool replaces it.
    @tool
    async def ignore_sigterm(self, hold: float = 0.0) -> int:
        """Ignore SIGTERM from now on (async: runs in the main thread, where handlers live);
        then hold the worker's one slot ``hold`` seconds, so that concurrent calls spread."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        await asyncio.sleep(hold)
        return os.getpid()

    @tool
    def pid(self) -> int:
        return os.getpid()


# In memory: how many times each session's end ran, whichever worker it was on.
SESSIONS_ENDED: collections.Counter[str] = collections.Counter()


class Sessions(Adapter):
    """Counts ``on_session_end`` per worker; a slow tool to run while a ttl runs out."""

    async def initialize(self) -> None:
        self.ended = 0
        self.events: list[tuple[str, float]] = []  # calls' starts and ends
        self.ends_at: dict[str, float] = {}  # when on_session_end ran, by session

    @tool
    def pid(self) -> int:
        return os.getpid()

    @tool
    async def sleep(self, seconds: float, ctx: ToolContext) -> str:
        loop = asyncio.get_running_loop()
        self.events.append((f"start {ctx.session_id}", loop.time()))
        await asyncio.sleep(seconds)
        self.events.append((f"end {ctx.session_id}", loop.time()))
        return "slept"

    @tool
    async def ticks(self, n: int, every: float, ctx: ToolContext) -> AsyncIterator[int]:
        loop = asyncio.get_running_loop()
        self.events.append((f"start {ctx.session_id}", loop.time()))
        for i in range(n):
            await asyncio.sleep(every)
            yield i
        self.events.append((f"end {ctx.session_id}", loop.time()))

    @tool
    def ended_here(self) -> tuple[int, int]:
        """This worker's pid, and how many sessions ended here."""
        return os.getpid(), self.ended

    @tool
    def events_seen(self) -> list[tuple[str, float]]:
        return list(self.events)

    @tool
    def session_ends(self) -> dict[str, float]:
        return dict(self.ends_at)

    async def on_session_end(self, session_id: str) -> None:
        self.ended += 1
        SESSIONS_ENDED[session_id] += 1
        if len(self.ends_at) < 1000:  # thousands of sessions end here: keep the first ones
            self.ends_at[session_id] = asyncio.get_running_loop().time()


class SessionEndRaises(Adapter):
    """``on_session_end`` raises what the session's id names (after its last ``-``)."""

    async def initialize(self) -> None:
        self.ends = 0

    @tool
    def pid(self) -> int:
        return os.getpid()

    @tool
    def ends_seen(self) -> int:
        return self.ends

    async def on_session_end(self, session_id: str) -> None:
        self.ends += 1
        what = session_id.rsplit("-", 1)[-1]
        if what == "SystemExit":
            raise SystemExit(3)
        if what == "KeyboardInterrupt":
            raise KeyboardInterrupt
        raise ValueError(f"cannot end {session_id}")


class Raiser(Faults):
    """The raising tools of ``Faults``, and more moments to raise at: while a sync
    generator is closed early, and when a sync tool sees its cancel."""

    @tool
    def gen_raises_on_close(self, what: str) -> Iterator[int]:
        try:
            yield 1
            while True:
                yield 2
        finally:
            raise_(what)

    @tool
    def raises_when_cancelled(self, what: str, ctx: ToolContext) -> None:
        while not ctx.cancelled:
            time.sleep(0.001)
        raise_(what)
