"""The grpclib service a worker serves: Describe, Health, Connect, Execute, ExecuteStream."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import psutil

from .._proto.snakepit import v1 as pb
from .._shared import _frames as w
from .._shared._codec import encode
from ._runtime import Frame, RunningCall, Runtime, error_frame

log = logging.getLogger("snakepit_trio.worker")


class Connection:
    """One Connect stream: the calls started through it and the frames waiting to go out.

    Frames produced while the stream is busy sending pile up in the outbox and leave
    together in the next message, so results finished in one loop iteration share a batch.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.calls: dict[int, RunningCall] = {}
        self.outbox: list[Frame] = []
        self.wake = asyncio.Event()
        self.reading_done = False

    def emit(self, frame: Frame) -> None:
        self.outbox.append(frame)
        self.wake.set()

    def _call_done(self, call_id: int) -> None:
        self.calls.pop(call_id, None)
        if self.reading_done and not self.calls:
            self.wake.set()

    def handle(self, frames: Any) -> None:
        if not isinstance(frames, list):
            log.warning("ignoring a malformed batch (not a list of frames)")
            return
        for frame in frames:
            try:
                self._handle_one(frame)
            except Exception:
                # A malformed frame must not take the worker (or its other calls) down.
                log.warning("ignoring a malformed frame %r", frame, exc_info=True)

    def _handle_one(self, frame: Any) -> None:
        kind = frame[0]
        if kind == w.CALL:
            _, call_id, tool, args, session_id, deadline, window = frame
            if not isinstance(call_id, int) or not isinstance(tool, str):
                raise TypeError("CALL needs an integer id and a string tool name")
            if call_id in self.calls:
                self.emit(
                    error_frame(call_id, "ProtocolError", "duplicate call id", w.KIND_PROTOCOL)
                )
                return
            call = self.runtime.start_call(
                call_id,
                tool,
                bytes(args or b""),
                session_id,
                deadline,
                int(window or 0),
                self.emit,
                self._call_done,
            )
            if call is not None:
                self.calls[call_id] = call
        elif kind == w.CANCEL:
            call = self.calls.get(frame[1])
            if call is not None:
                call.cancel()
        elif kind == w.SESSION_END:
            if not isinstance(frame[1], str):
                raise TypeError("SESSION_END needs a string session id")
            self.runtime.end_session(frame[1])
        elif kind == w.PING:
            self.emit([w.PONG, frame[1], _rss()])
        elif kind == w.CREDIT:
            call = self.calls.get(frame[1])
            if call is not None:
                call.add_credit(int(frame[2]))
        elif kind == w.UNMAPPED_RESULTS:
            self.runtime.returned(frame[1])
        else:
            raise ValueError(f"unknown frame kind {kind!r}")

    def cancel_all(self) -> None:
        for call in list(self.calls.values()):
            call.cancel()

    def take_batches(self) -> list[bytes]:
        frames, self.outbox = self.outbox, []
        return [
            msgpack.packb(batch, use_bin_type=True)
            for batch in w.split_batches(frames, _payload_size)
        ]


@functools.cache
def _me() -> psutil.Process:
    return psutil.Process()


def _rss() -> int | None:
    """This process's resident memory, reported with each heartbeat (the host keeps the last
    value, so a worker killed for memory can be described as such)."""
    try:
        return int(_me().memory_info().rss)
    except (psutil.Error, OSError):
        return None


def _payload_size(frame: Frame) -> int:
    return len(frame[2]) if frame[0] in (w.RESULT, w.CHUNK) else 0


class WorkerService(pb.WorkerBase):  # type: ignore[misc]  # generated, untyped base
    def __init__(self, runtime: Runtime, adapter_name: str) -> None:
        self.runtime = runtime
        self.adapter_name = adapter_name

    async def describe(self, message: pb.DescribeRequest) -> pb.DescribeResponse:
        tools = []
        for info in self.runtime.tools.values():
            params = [
                pb.ParamSpec(
                    name=p.name,
                    type=p.type,
                    required=p.required,
                    default=b"" if p.required else _encode_default(p.default),
                )
                for p in info.params
            ]
            tools.append(
                pb.ToolSpec(
                    name=info.name,
                    description=info.description,
                    streaming=info.streaming,
                    params=params,
                    accepts_extra=info.accepts_extra,
                )
            )
        return pb.DescribeResponse(
            adapter=self.adapter_name,
            pid=os.getpid(),
            capacity=self.runtime.capacity,
            tools=tools,
            protocol=w.PROTOCOL,
        )

    async def health(self, message: pb.HealthRequest) -> pb.HealthResponse:
        return pb.HealthResponse(
            status="serving",
            pid=os.getpid(),
            uptime=time.monotonic() - self.runtime.started,
            in_flight=self.runtime.in_flight,
            requests=self.runtime.requests,
        )

    async def connect(self, messages: AsyncIterator[pb.Batch]) -> AsyncIterator[pb.Batch]:
        conn = Connection(self.runtime)
        reader = asyncio.ensure_future(self._read(conn, messages))
        try:
            while True:
                await conn.wake.wait()
                conn.wake.clear()
                for batch in conn.take_batches():
                    yield pb.Batch(frames=batch)
                if conn.reading_done and not conn.calls and not conn.outbox:
                    break
        finally:
            reader.cancel()
            conn.cancel_all()

    async def _read(self, conn: Connection, messages: AsyncIterator[pb.Batch]) -> None:
        try:
            async for message in messages:
                try:
                    frames = msgpack.unpackb(message.frames, raw=False, strict_map_key=False)
                except Exception:
                    log.warning("ignoring an undecodable batch of %d bytes", len(message.frames))
                    continue
                conn.handle(frames)
        finally:
            conn.reading_done = True
            conn.wake.set()

    async def execute(self, message: pb.ExecuteRequest) -> pb.ExecuteResponse:
        frames: list[Frame] = []
        done = asyncio.Event()

        def sink(frame: Frame) -> None:
            if frame[0] in (w.RESULT, w.ERROR, w.END):
                frames.append(frame)
                done.set()

        info = self.runtime.tools.get(message.tool)
        if info is not None and info.streaming:
            reason = f"tool {message.tool!r} streams; call it with ExecuteStream"
            return _response(error_frame(0, "InvalidArguments", reason, w.KIND_INVALID_ARGUMENTS))
        call = self._start(message, sink, window=0)
        try:
            await done.wait()
        finally:
            if call is not None and not done.is_set():
                call.cancel()
        return _response(frames[0])

    async def execute_stream(self, message: pb.ExecuteRequest) -> AsyncIterator[pb.ExecuteResponse]:
        queue: asyncio.Queue[Frame] = asyncio.Queue()
        call = self._start(message, queue.put_nowait, window=16)
        finished = False
        try:
            while True:
                frame = await queue.get()
                if frame[0] == w.PROGRESS:
                    continue
                if frame[0] == w.END:
                    finished = True
                    return
                yield _response(frame)
                if frame[0] in (w.ERROR, w.RESULT):
                    finished = True
                    return
                if call is not None:
                    call.add_credit(1)  # grpclib accepted the chunk: let one more come
        finally:
            if call is not None and not finished:
                call.cancel()

    def _start(self, message: pb.ExecuteRequest, sink: Any, *, window: int) -> RunningCall | None:
        return self.runtime.start_call(
            0,
            message.tool,
            message.args,
            message.session_id or None,
            message.timeout or None,
            window,
            sink,
        )


def _encode_default(value: Any) -> bytes:
    try:
        return encode(value, what="default", limit=1 << 16)
    except Exception:  # an unencodable default is simply not advertised
        return b""


def _response(frame: Frame) -> pb.ExecuteResponse:
    if frame[0] == w.ERROR:
        _, _, type_, message, tb, kind = frame
        return pb.ExecuteResponse(
            error=pb.ErrorInfo(kind=kind, type=type_, message=message, traceback=tb)
        )
    return pb.ExecuteResponse(result=frame[2])
