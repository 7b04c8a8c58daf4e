"""The pool's control endpoint: a read-only unix socket that ``snakepit-trio status`` asks.

How this works: the socket lives in the pool's private socket directory (mode 0700, so only
this user can reach it; a peer of another uid is refused all the same) and is listed in the
registry's ``pools`` table. Frames are the local lane's: a 4-byte little-endian length, then a
msgpack list. The one request is ``[30, "status"]``; the answer is ``[31, snapshot]``, a map
built on the Trio thread from ``pool.stats()``, ``pool.workers()`` and
``pool.list_sessions()``: answering never sends anything to a worker, so a busy or wedged
worker cannot delay it. Anything else gets ``[31, {"error": ...}]``; a request over 64 KiB
closes the connection. The endpoint is a task of the engine's nursery and ends with the pool;
failing to listen only loses ``status``, never the pool.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import struct
import time
from collections.abc import Callable
from typing import Any

import attrs
import msgpack
import trio

from ._shared._functions import label
from ._supervision import _pool_table as pool_table
from ._supervision._records import WorkerRecords
from ._supervision._registry import Registry

log = logging.getLogger("snakepit_trio")

REQUEST, REPLY = 30, 31
FILENAME = "control.sock"
_HEADER = struct.Struct("<I")
_MAX_REQUEST = 64 * 1024
_IDLE = 10.0  # seconds a connection may sit silent before it is closed


def snapshot(name: str, adapter: str, stats: Any, workers: Any, sessions: Any) -> dict[str, Any]:
    """The status map: the pool's frozen snapshots as plain values."""
    return {
        "name": name,
        "adapter": adapter,
        "host_pid": os.getpid(),
        "time": time.time(),
        "stats": attrs.asdict(stats),
        "workers": [attrs.asdict(w) for w in workers],
        "sessions": [attrs.asdict(s) for s in sessions],
    }


def pack(message: list[Any]) -> bytes:
    data: bytes = msgpack.packb(message, use_bin_type=True, default=repr)
    return _HEADER.pack(len(data)) + data


async def serve(
    directory: str,
    describe: Callable[[], dict[str, Any]],
    registry: Registry | None,
    row: Callable[[str], pool_table.PoolRow],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Listen in ``directory`` until cancelled; list the pool in ``registry`` meanwhile."""
    path = os.path.join(directory, FILENAME)
    listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await listener.bind(path)
        os.chmod(path, 0o600)  # the directory is 0700 already; the socket says so too
        listener.listen(8)
    except OSError as exc:
        listener.close()
        log.warning("control endpoint unavailable (snakepit-trio status will not see it): %r", exc)
        task_status.started()
        return
    listed = False
    try:
        if registry is not None:
            try:
                await trio.to_thread.run_sync(pool_table.add, registry, row(path))
                listed = True
            except (sqlite3.Error, OSError) as exc:  # status only loses this pool
                log.warning("control endpoint: pool not listed in the registry: %r", exc)
        task_status.started()
        async with trio.open_nursery() as nursery:
            while True:
                conn, _ = await listener.accept()
                nursery.start_soon(_answer, conn, describe)
    finally:
        listener.close()
        if listed and registry is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                try:
                    await trio.to_thread.run_sync(pool_table.remove, registry, row(path).token)
                except (sqlite3.Error, OSError) as exc:
                    log.warning("control endpoint: %r", exc)


def _same_user(conn: trio.socket.SocketType) -> bool:
    creds = getattr(socket, "SO_PEERCRED", None)
    if creds is None:
        return True  # the 0700 directory is the guard
    _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, creds, 12))
    return bool(uid == os.geteuid())


async def _answer(conn: trio.socket.SocketType, describe: Callable[[], dict[str, Any]]) -> None:
    stream = trio.SocketStream(conn)
    async with stream:
        if not _same_user(conn):
            return
        buffer = b""
        while True:
            chunk = b""
            with trio.move_on_after(_IDLE):
                chunk = await stream.receive_some(4096)
            if not chunk:
                return  # closed, or silent for too long
            buffer += chunk
            while len(buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buffer)
                if size > _MAX_REQUEST:
                    return
                end = _HEADER.size + size
                if len(buffer) < end:
                    break
                body, buffer = buffer[_HEADER.size : end], buffer[end:]
                try:
                    await stream.send_all(pack([REPLY, _reply(body, describe)]))
                except trio.BrokenResourceError:
                    return


def _reply(body: bytes, describe: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        request = msgpack.unpackb(body, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):  # untrusted bytes
        return {"error": "not a msgpack frame"}
    if request == [REQUEST, "status"]:
        return describe()
    return {"error": f"unknown request {request!r:.80}; the only one is [30, 'status']"}


async def serve_pool(
    pool: Any,
    records: WorkerRecords,
    directory: str,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``serve`` for an open pool (``pool``: a Pool; ``records``: its WorkerRecords)."""
    config = pool.config
    served = label(config.adapter, config.tools)  # the adapter, its function tools, or both

    def describe() -> dict[str, Any]:
        return snapshot(config.name, served, pool.stats(), pool.workers(), pool.list_sessions())

    def row(path: str) -> pool_table.PoolRow:
        return pool_table.PoolRow(
            records.token,
            config.name,
            served,
            records.host_pid,
            records.host_started,
            path,
            time.time(),
        )

    await serve(directory, describe, records.registry, row, task_status=task_status)
