"""The grpclib service a worker serves: Describe, Health, Connect, Execute, ExecuteStream."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import msgpack

from .._proto.snakepit import v1 as pb
from .._shared import _frames as w
from ._connection import Connection, describe_map
from ._runtime import Frame, RunningCall, Runtime

log = logging.getLogger("snakepit_trio.worker")


class WorkerService(pb.WorkerBase):  # type: ignore[misc]  # generated, untyped base
    def __init__(self, runtime: Runtime, adapter_name: str) -> None:
        self.runtime = runtime
        self.adapter_name = adapter_name

    async def describe(self, message: pb.DescribeRequest) -> pb.DescribeResponse:
        d = describe_map(self.runtime, self.adapter_name)
        tools = [
            pb.ToolSpec(
                name=t["name"],
                description=t["description"],
                streaming=t["streaming"],
                accepts_extra=t["accepts_extra"],
                threaded=t["threaded"],
                params=[pb.ParamSpec(**p) for p in t["params"]],
            )
            for t in d["tools"]
        ]
        return pb.DescribeResponse(
            adapter=d["adapter"],
            pid=d["pid"],
            capacity=d["capacity"],
            tools=tools,
            protocol=d["protocol"],
            capabilities=d["capabilities"],
            runtime=d["runtime"],
            gil_enabled=d["gil_enabled"],
            thread_safe=d["thread_safe"],
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
            return _response(w.error(0, "InvalidArguments", reason, w.KIND_INVALID_ARGUMENTS))
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
                if frame[0] in (w.CHUNK, w.CHUNKS):  # CHUNKS: a sync generator's burst
                    for payload in frame[2] if frame[0] == w.CHUNKS else [frame[2]]:
                        yield pb.ExecuteResponse(result=payload)  # one message per chunk
                        if call is not None:
                            call.add_credit(1)  # grpclib accepted the chunk: let one more come
                    continue
                yield _response(frame)  # ERROR (or a RESULT): the call's last frame
                finished = True
                return
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


def _response(frame: Frame) -> pb.ExecuteResponse:
    if frame[0] == w.ERROR:
        _, _, type_, message, tb, kind, *_ = frame
        return pb.ExecuteResponse(
            error=pb.ErrorInfo(kind=kind, type=type_, message=message, traceback=tb)
        )
    return pb.ExecuteResponse(result=frame[2])
