"""The local lane: the Connect stream's msgpack batches over a plain unix socket.

Same frames as Connect (see proto/snakepit/v1/worker.proto), each batch prefixed with its
length as a 4-byte little-endian unsigned int. No HTTP/2, no protobuf per message: a round
trip costs a fraction of gRPC's, which matters for sequential calls. gRPC stays the contract
for control, remote and other-language workers; the host uses this lane only for workers it
started itself.

Handshake: the host's first batch is ``[[HELLO, protocol]]``; the worker answers
``[[WELCOME, describe]]`` where ``describe`` is its description map (``describe_map``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from typing import Any

import msgpack

from .._shared import _frames as w
from ._connection import Connection
from ._runtime import Runtime

log = logging.getLogger("snakepit_trio.worker")

_HEADER = struct.Struct("<I")


class LaneServer:
    def __init__(self, runtime: Runtime, describe: dict[str, Any], max_message: int) -> None:
        self._describe = describe
        self._runtime = runtime
        self._max_message = max_message
        self._server: asyncio.AbstractServer | None = None
        self._handlers: dict[asyncio.Task[None], Connection] = {}

    async def start(self, path: str) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=path)
        os.chmod(path, 0o600)

    async def close(self, timeout: float = 2.0) -> None:
        """Stop accepting; each connection sends what it owes, then closes (bounded).

        Called once the runtime has drained, so no call is left to wait for.
        """
        if self._server is not None:
            self._server.close()
        for conn in self._handlers.values():
            conn.reading_done = True  # take nothing more; leave once the outbox is sent
            conn.wake.set()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        conn = Connection(self._runtime)
        self._handlers[task] = conn
        reading = asyncio.ensure_future(self._read(conn, reader))
        try:
            while True:
                await conn.wake.wait()
                conn.wake.clear()
                batches = conn.take_batches()
                if batches:
                    writer.write(b"".join(_HEADER.pack(len(b)) + b for b in batches))
                    await writer.drain()
                if conn.reading_done and not conn.calls and not conn.outbox:
                    break
        except (ConnectionError, OSError):
            pass  # the host went away; its calls are cancelled below
        finally:
            reading.cancel()
            conn.cancel_all()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._handlers.pop(task, None)

    async def _read(self, conn: Connection, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                header = await reader.readexactly(_HEADER.size)
                (size,) = _HEADER.unpack(header)
                if size > self._max_message:
                    log.warning("lane message of %d bytes is over the limit; closing", size)
                    return
                data = await reader.readexactly(size)
                try:
                    frames = msgpack.unpackb(data, raw=False, strict_map_key=False)
                except Exception:
                    log.warning("ignoring an undecodable lane batch of %d bytes", size)
                    continue
                if isinstance(frames, list) and frames and _is_hello(frames[0]):
                    conn.emit(w.welcome(self._describe))
                conn.handle(frames)  # HELLO included: it says what the host serves
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            conn.reading_done = True
            conn.wake.set()


def _is_hello(frame: object) -> bool:
    try:
        return type(w.parse_from_host(frame)) is w.Hello
    except w.ProtocolViolation:
        return False
