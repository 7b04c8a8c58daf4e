"""A worker's grpclib channel and its one persistent Connect stream, driven from Trio.

Trio side: ``send(frame)`` appends to a pending list under a lock; the first frame after a
flush schedules ONE wake-up of the asyncio writer, so every frame queued in the meantime
leaves in the same message. asyncio side: the writer sends batches, the reader decodes each
incoming batch and posts it to Trio through the bridge (also coalesced).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import msgpack
import trio
from grpclib.client import Channel
from grpclib.const import Cardinality

from .._proto.snakepit import v1 as pb
from .._shared import _frames as w
from ._bridge import Bridge
from ._describe import WorkerDescription, description_from_map
from ._errors import TransportError

log = logging.getLogger("snakepit_trio")

_CONNECT = "/snakepit.v1.Worker/Connect"


def description_map(reply: pb.DescribeResponse) -> dict[str, Any]:
    """The Describe reply as the description map every channel hands on (_describe.py)."""
    return {
        "protocol": reply.protocol,
        "adapter": reply.adapter,
        "pid": reply.pid,
        "capacity": reply.capacity,
        "capabilities": list(reply.capabilities),
        "runtime": reply.runtime,  # "" when the worker left it unset
        "gil_enabled": reply.gil_enabled,  # None when the worker left it unset
        "thread_safe": reply.thread_safe,
        "tools": [
            {
                "name": t.name,
                "description": t.description,
                "streaming": t.streaming,
                "accepts_extra": t.accepts_extra,
                "threaded": t.threaded,
                "params": [
                    {"name": p.name, "type": p.type, "required": p.required, "default": p.default}
                    for p in t.params
                ],
            }
            for t in reply.tools
        ],
    }


class WorkerChannel:
    def __init__(
        self,
        bridge: Bridge,
        socket_path: str,
        on_frames: Callable[[object], None],
        on_lost: Callable[[str], None],
    ) -> None:
        self._bridge = bridge
        self._path = socket_path
        self._on_frames = on_frames
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self._pending: list[Any] = []
        self._scheduled = False
        self._closed = False
        # asyncio-side state
        self._channel: Channel | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._stream: Any = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # --- Trio side -----------------------------------------------------------------------
    async def open(self, nursery: trio.Nursery, timeout: float) -> WorkerDescription:
        """Connect, describe the worker and open the Connect stream (tasks on the bridge).

        Raises:
            TransportError: the worker did not answer within ``timeout`` seconds, or its
                description is not valid.
        """
        reply: pb.DescribeResponse = await self._bridge.run(self._aopen, timeout)
        try:
            return description_from_map(description_map(reply))
        except w.ProtocolViolation as exc:
            await self.aclose()
            raise TransportError(
                f"the worker at {self._path} described itself badly: {exc}"
            ) from exc

    def send(self, frame: list[Any]) -> None:
        """Queue a frame; it leaves with everything else queued before the writer runs."""
        with self._lock:
            self._pending.append(frame)
            if self._scheduled:
                return
            self._scheduled = True
        self._bridge.call_soon(self._kick)

    async def aclose(self) -> set[int]:
        """Close the stream and channel; return ids of CALL and BATCH frames never handed
        to grpclib."""
        with self._lock:
            self._closed = True
            pending, self._pending = self._pending, []
        undelivered = {f[1] for f in pending if f[0] in w.CALL_KINDS}
        await self._bridge.run(self._aclose)
        return undelivered

    # --- asyncio side --------------------------------------------------------------------
    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _aopen(self, timeout: float) -> pb.DescribeResponse:
        self._wake = asyncio.Event()
        self._channel = Channel(path=self._path)
        try:
            async with asyncio.timeout(timeout):
                desc: pb.DescribeResponse = await pb.WorkerStub(self._channel).describe()
                self._stack = contextlib.AsyncExitStack()
                self._stream = await self._stack.enter_async_context(
                    self._channel.request(_CONNECT, Cardinality.STREAM_STREAM, pb.Batch, pb.Batch)
                )
                await self._stream.send_request()
                # Connect's first frame says what this host serves (the worker answers nothing).
                await self._stream.send_message(
                    pb.Batch(frames=msgpack.packb([w.hello()], use_bin_type=True))
                )
        except Exception as exc:
            self._channel.close()
            raise TransportError(f"cannot connect to {self._path}: {exc!r}") from exc
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._writer()), loop.create_task(self._reader())]
        if self._pending:
            self._wake.set()
        return desc

    async def _writer(self) -> None:
        assert self._wake is not None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                with self._lock:
                    frames, self._pending = self._pending, []
                    self._scheduled = False
                batches = w.split_batches(frames, w.call_size)
                for i, batch in enumerate(batches):
                    try:
                        data = msgpack.packb(batch, use_bin_type=True)
                        await self._stream.send_message(pb.Batch(frames=data))
                    except BaseException as exc:
                        # Give back what never reached the worker, so aclose() reports those
                        # calls as undelivered (they are re-queued, not failed). A batch cut
                        # off by cancellation may have been written: count it as delivered.
                        cancelled = isinstance(exc, asyncio.CancelledError)
                        unsent = [f for b in batches[i + cancelled :] for f in b]
                        with self._lock:
                            self._pending[:0] = unsent
                        raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._lost(f"sending to the worker failed: {exc!r}")

    async def _reader(self) -> None:
        try:
            while True:
                message = await self._stream.recv_message()
                if message is None:
                    break
                frames = msgpack.unpackb(message.frames, raw=False, strict_map_key=False)
                self._bridge.post_to_trio(self._on_frames, frames)
            self._lost("the worker closed its stream")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._lost(f"receiving from the worker failed: {exc!r}")

    def _lost(self, reason: str) -> None:
        if not self._closed:
            self._bridge.post_to_trio(self._on_lost, reason)

    async def _aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._stack is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await self._stack.aclose()
        if self._channel is not None:
            self._channel.close()
