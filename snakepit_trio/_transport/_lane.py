"""The local lane, host side: Connect's msgpack batches over a unix socket, in Trio itself.

Frames and batching are those of the gRPC Connect stream (``_channel.py``); only the
carrier differs: each batch is prefixed with its length (4 bytes, little-endian) and the
socket is driven by Trio tasks, so no message crosses a thread. ``send(frame)`` appends to a
pending list and wakes the writer once; every frame queued before the writer runs leaves in
the same write. The reader hands each read's frames to ``on_frames`` directly.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import msgpack
import trio

from .. import _wire as w
from .._proto.snakepit import v1 as pb
from ._channel import TransportError, call_size

_HEADER = struct.Struct("<I")


class LaneChannel:
    def __init__(
        self,
        socket_path: str,
        on_frames: Callable[[list[Any]], None],
        on_lost: Callable[[str], None],
        max_message: int,
    ) -> None:
        self._path = socket_path
        self._on_frames = on_frames
        self._on_lost = on_lost
        self._max_message = max_message
        self._pending: list[Any] = []
        self._lot = trio.lowlevel.ParkingLot()
        self._stream: trio.SocketStream | None = None
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()
        self._closed = False

    async def open(self, nursery: trio.Nursery, timeout: float) -> pb.DescribeResponse:
        """Connect, say HELLO, read WELCOME (the worker's description), start the pumps.

        Raises:
            TransportError: no connection or no WELCOME within ``timeout`` seconds.
        """
        try:
            with trio.fail_after(timeout):
                self._stream = await trio.open_unix_socket(self._path)
                await self._stream.send_all(_pack([[w.HELLO, w.PROTOCOL]]))
                buffer = bytearray()
                messages: list[Any] = []
                while not messages:
                    data = await self._stream.receive_some(65536)
                    if not data:
                        raise TransportError("the worker closed the lane during the handshake")
                    buffer += data
                    messages = self._parse(buffer)
        except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
            if self._stream is not None:
                await self._stream.aclose()
            raise TransportError(f"cannot open the lane {self._path}: {exc!r}") from None
        first, *rest = messages
        if not (first and first[0][0] == w.WELCOME):
            raise TransportError(f"the worker did not answer HELLO on {self._path}")
        describe = pb.DescribeResponse().parse(first[0][1])
        nursery.start_soon(self._run, bytes(buffer), [f for m in [first[1:], *rest] for f in m])
        return describe

    def send(self, frame: list[Any]) -> None:
        """Queue a frame; it leaves with everything queued before the writer runs."""
        self._pending.append(frame)
        if len(self._pending) == 1:
            self._lot.unpark()

    async def aclose(self) -> set[int]:
        """Stop the pumps, close the socket; return ids of CALL frames never written."""
        self._closed = True
        pending, self._pending = self._pending, []
        if self._scope is not None:
            self._scope.cancel()
            await self._done.wait()
        if self._stream is not None:
            await self._stream.aclose()
        return {f[1] for f in pending if f[0] == w.CALL}

    # --- pumps ---------------------------------------------------------------------------
    async def _run(self, leftover: bytes, early: list[Any]) -> None:
        try:
            with trio.CancelScope() as self._scope:
                if early:
                    self._on_frames(early)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer)
                    nursery.start_soon(self._reader, bytearray(leftover))
        finally:
            self._done.set()

    async def _writer(self) -> None:
        assert self._stream is not None
        try:
            while True:
                if not self._pending:
                    await self._lot.park()  # callers of this tick all queue before we run
                frames, self._pending = self._pending, []
                if frames:
                    await self._stream.send_all(
                        b"".join(_pack(batch) for batch in w.split_batches(frames, call_size))
                    )
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._lost(f"sending to the worker failed: {exc!r}")

    async def _reader(self, buffer: bytearray) -> None:
        assert self._stream is not None
        try:
            while True:
                data = await self._stream.receive_some(1 << 18)
                if not data:
                    self._lost("the worker closed the lane")
                    return
                buffer += data
                messages = self._parse(buffer)
                if messages:
                    frames = messages[0] if len(messages) == 1 else [f for m in messages for f in m]
                    self._on_frames(frames)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._lost(f"receiving from the worker failed: {exc!r}")
        except TransportError as exc:
            self._lost(str(exc))

    def _parse(self, buffer: bytearray) -> list[list[Any]]:
        """Take every complete message off the front of ``buffer``."""
        out = []
        start = 0
        while len(buffer) - start >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, start)
            if size > self._max_message:
                raise TransportError(f"a lane message of {size} bytes is over the limit")
            end = start + _HEADER.size + size
            if len(buffer) < end:
                break
            try:
                out.append(
                    msgpack.unpackb(
                        buffer[start + _HEADER.size : end], raw=False, strict_map_key=False
                    )
                )
            except Exception as exc:
                raise TransportError(f"an undecodable lane message: {exc!r}") from None
            start = end
        del buffer[:start]
        return out

    def _lost(self, reason: str) -> None:
        if not self._closed:
            self._on_lost(reason)


def _pack(batch: list[Any]) -> bytes:
    data: bytes = msgpack.packb(batch, use_bin_type=True)
    return _HEADER.pack(len(data)) + data
