"""A worker in memory: the user's adapter and the real worker runtime, in the host's thread.

A ``FakeWorker`` runs what a worker process runs (``worker/_runtime.py`` and its
``Connection``) on a stepped asyncio loop (``_loop.py``), so tools behave as they do in a
process: the same argument checks, cancellation, credits, progress and errors. Differences,
all on purpose: sync tools and sync generators run on the loop, one step at a time, instead
of in threads (a virtual clock needs that); there is no shared memory; and the "process" is
a ``FakeProcess``, which exits when the pool stops it or a test crashes it.

Frames travel as in a real channel (``MemoryChannel``): every batch is packed with msgpack on
one side and unpacked on the other, so what cannot cross a process boundary cannot cross this
one either.
"""

from __future__ import annotations

import asyncio
import math
import os
import traceback
from typing import Any

import msgpack
import trio

from .._config import PoolConfig
from .._shared import _frames as w
from .._shared._functions import label
from .._supervision._stand_in import StandIn
from .._supervision._worker import Worker
from .._transport._base import OnFrames, OnLost
from .._transport._describe import WorkerDescription, description_from_map
from ..worker import _events
from ..worker._adapter import Adapter
from ..worker._connection import Connection, describe_map
from ..worker._functions import FunctionTool, collect_all
from ..worker._runtime import Runtime
from ._loop import SteppedLoop, open_stepped_loop

EXIT_ADAPTER_ERROR = 3  # as a worker process that cannot start its adapter
SIGKILL_CODE = -9


class FakeProcess(StandIn):
    """What the supervisor watches instead of a process."""

    start_method = "memory"

    def __init__(self) -> None:
        super().__init__(os.getpid())  # the worker really runs in this process

    def exit(self, code: int) -> None:
        self.end(code)


class Link:
    """How frames reach one fake worker and come back; where faults act."""

    def __init__(self, delay: float) -> None:
        self.delay = delay  # seconds each batch from the worker takes to arrive
        self.hung = False
        self.resumed = trio.Event()


class FakeWorker:
    def __init__(
        self,
        adapter: type[Adapter],
        functions: list[FunctionTool],
        config: PoolConfig,
        worker: Worker,
        link: Link,
    ) -> None:
        self._adapter_cls = adapter
        self._functions = functions
        self._adapter_name = label(config.adapter, config.tools)
        self._config = config
        self._worker = worker
        self.link = link
        self.process: FakeProcess = worker.process  # type: ignore[assignment]
        self.loop: SteppedLoop | None = None
        self.runtime: Runtime | None = None
        self._adapter: Adapter | None = None
        self._connection: Connection | None = None
        self._done = trio.Event()  # the worker is gone: its loop closes
        self._sent = asyncio.Event()  # the writer has sent what the outbox held

    async def start(
        self, nursery: trio.Nursery, on_frames: OnFrames, on_lost: OnLost
    ) -> WorkerDescription | str:
        """Start the adapter and its connection; its description, or why it did not start."""
        started: WorkerDescription | str = await nursery.start(self._serve, on_frames)
        return started

    async def _serve(
        self, on_frames: OnFrames, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
    ) -> None:
        timeout = self._config.startup_timeout
        async with open_stepped_loop() as loop:
            self.loop = loop
            try:
                with trio.fail_after(timeout):
                    await loop.run(self._boot())
            except trio.TooSlowError:
                self.process.exit(SIGKILL_CODE)
                task_status.started(f"not ready within startup_timeout={timeout:g}s")
                return
            except Exception as exc:
                tail = traceback.format_exception(exc)
                for line in "".join(tail).splitlines():
                    self._worker.stderr_tail.append(line)
                self._worker.stderr_tail.append(f"snakepit worker: adapter failed to start: {exc}")
                self.process.exit(EXIT_ADAPTER_ERROR)
                task_status.started(f"exited with code {EXIT_ADAPTER_ERROR} before it was ready")
                return
            assert self.runtime is not None and self._connection is not None
            description = description_from_map(describe_map(self.runtime, self._adapter_name))
            to_host, from_worker = trio.open_memory_channel[bytes](math.inf)
            channel = MemoryChannel(self, self._connection)
            self._worker.channel = channel
            loop.create_task(self._writer(self._connection, to_host))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._reader, from_worker, on_frames)
                task_status.started(description)
                await self._done.wait()
                nursery.cancel_scope.cancel()

    async def _boot(self) -> None:
        # Its own outlet for events outside calls (workers in processes have one each).
        _events.use_outlet(_events.Outlet())
        adapter = self._adapter_cls()
        tools = collect_all(adapter, self._functions)
        await adapter.initialize()
        self._adapter = adapter
        self.runtime = Runtime(
            tools,
            capacity=self._config.worker_capacity,
            max_payload=self._config.max_payload_bytes,
            on_session_end=adapter.on_session_end,
            inline=True,
            thread_safe=self._adapter_cls.thread_safe is True,
        )
        self._connection = Connection(self.runtime)
        self._connection.handle([w.hello()])  # as a host does first, on either carrier

    async def _writer(self, conn: Connection, to_host: trio.MemorySendChannel[bytes]) -> None:
        """Asyncio side: each batch the connection has ready goes to the host."""
        while True:
            await conn.wake.wait()
            conn.wake.clear()
            for batch in conn.take_batches():
                to_host.send_nowait(batch)
            self._sent.set()

    async def _reader(
        self, from_worker: trio.MemoryReceiveChannel[bytes], on_frames: OnFrames
    ) -> None:
        """Trio side: batches reach the engine in order, late when delayed, not while hung."""
        async for batch in from_worker:
            if self.link.delay:
                await trio.sleep(self.link.delay)
            while self.link.hung:
                await self.link.resumed.wait()
            on_frames(msgpack.unpackb(batch, raw=False, strict_map_key=False))

    def deliver(self, frames: list[Any]) -> None:
        """Host frames reach the connection (called on the loop)."""
        if self._connection is not None and not self._done.is_set():
            packed = msgpack.packb(frames, use_bin_type=True)
            self._connection.handle(msgpack.unpackb(packed, raw=False, strict_map_key=False))

    async def stop(self, grace: float) -> None:
        """As a worker process on SIGTERM: running calls finish and their results leave,
        the adapter cleans up, exit 0; after ``grace`` seconds, killed instead."""
        if self.process.returncode is None and self.loop is not None and grace > 0:
            with trio.move_on_after(grace):
                await self.loop.run(self._graceful())
                self.process.exit(0)
        self.kill(SIGKILL_CODE)

    async def _graceful(self) -> None:
        assert self.runtime is not None and self._adapter is not None
        await self.runtime.drain()
        if self._connection is not None:
            while self._connection.outbox:  # what it owes the host leaves first
                # Not wake.wait(): wake is set while the outbox holds frames, so that
                # returned at once, and this loop spun without ever letting the writer run.
                self._sent.clear()
                await self._sent.wait()
        await self._adapter.cleanup()

    def kill(self, code: int) -> None:
        """Gone at once, like a killed process: nothing more is sent or received."""
        self.process.exit(code)
        self._done.set()
        self.link.hung = False
        self.link.resumed.set()


class MemoryChannel:
    """The host's end of a fake worker's connection (see ``_transport/_base.py``)."""

    def __init__(self, fake: FakeWorker, connection: Connection) -> None:
        self._fake = fake
        self._pending: list[Any] = []
        self._held: list[Any] = []  # frames a hung worker did not take

    async def open(self, nursery: trio.Nursery, timeout: float) -> WorkerDescription:
        raise AssertionError("a memory channel is open from the start")  # pragma: no cover

    def send(self, frame: list[Any]) -> None:
        self._pending.append(frame)
        if len(self._pending) == 1:
            loop = self._fake.loop
            assert loop is not None
            loop.call_soon(self._flush)  # every frame of this tick leaves together

    def _flush(self) -> None:
        frames, self._pending = self._pending, []
        if self._fake.link.hung:
            self._held += frames
            return
        if self._held:
            frames, self._held = self._held + frames, []
        self._fake.deliver(frames)

    def release_held(self) -> None:
        loop = self._fake.loop
        if self._held and loop is not None:
            loop.call_soon(self._flush)

    async def aclose(self) -> set[int]:
        unsent = self._held + self._pending
        self._held, self._pending = [], []
        return {f[1] for f in unsent if f[0] in w.CALL_KINDS}
