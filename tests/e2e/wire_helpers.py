"""Talking to a worker process directly, as a simple client would (no pool).

Shared by the tests of the gRPC endpoint, of hostile input and of host death. Everything
here is synchronous and drives grpclib with asyncio.run (never inside Trio).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
from grpclib.client import Channel
from grpclib.const import Cardinality

from snakepit_trio._config import PoolConfig
from snakepit_trio._proto.snakepit import v1 as pb
from snakepit_trio._shared import _frames as w
from snakepit_trio._supervision import _runtimes


def program(adapter: str, runtime: str = "python") -> list[str]:
    """The command that starts a worker of ``runtime`` for ``adapter``, as the pool's."""
    found = _runtimes.program(PoolConfig(adapter=adapter, runtime=runtime))
    return [*found.argv, "--adapter", found.adapter]


@contextmanager
def start_worker(
    adapter: str = "tests.adapters.basic:Echo",
    *extra: str,
    stdin: int | None = None,
    runtime: str = "python",
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A worker started the way the pool starts one; yields its socket path and process."""
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "w.sock")
        ready_r, ready_w = os.pipe()
        proc = subprocess.Popen(
            [*program(adapter, runtime),
             "--socket", sock, "--ready-fd", str(ready_w), *extra],
            pass_fds=(ready_w,),
            start_new_session=True,
            stdin=stdin,
        )  # fmt: skip
        os.close(ready_w)
        try:
            with os.fdopen(ready_r, "rb") as ready:
                assert ready.readline().startswith(b"READY")
            yield sock, proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@contextmanager
def worker_socket() -> Iterator[str]:
    """An Echo worker's socket; on exit the worker must still live and exit 0 on SIGTERM."""
    with start_worker() as (sock, proc):
        yield sock
        assert proc.poll() is None, "the worker must still be alive"
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM: drain, cleanup, exit 0


def run(sock: str, fn: Callable[[Channel], Awaitable[Any]]) -> Any:
    """Run ``fn`` on a channel to the worker at ``sock``, bounded by 20 s."""

    async def main() -> Any:
        channel = Channel(path=sock)
        try:
            return await asyncio.wait_for(fn(channel), timeout=20)
        finally:
            channel.close()

    return asyncio.run(main())


def exchange(
    messages: list[bytes], done: Callable[[list[Any]], bool]
) -> Callable[[Channel], Awaitable[list[Any]]]:
    """For ``run``: send each of ``messages`` (a Batch's raw ``frames`` bytes) on one Connect
    stream, then collect the frames the worker sends back until ``done(frames)``."""

    async def talk(channel: Channel) -> list[Any]:
        async with channel.request(
            "/snakepit.v1.Worker/Connect", Cardinality.STREAM_STREAM, pb.Batch, pb.Batch
        ) as stream:
            await stream.send_request()
            for message in messages:
                await stream.send_message(pb.Batch(frames=message))
            frames: list[Any] = []
            while not done(frames):
                reply = await stream.recv_message()
                assert reply is not None, "the worker closed the stream"
                frames += msgpack.unpackb(reply.frames)
            await stream.end()
            return frames

    return talk


WAIT = 20  # seconds any one answer may take on a loaded machine (a bound, never a pause)


class Lane:
    """A host's end of a worker's local lane, blocking, every read bounded by WAIT."""

    def __init__(self, path: str, hello: list[Any] | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.sock.connect(path)
        self.send([hello or w.hello()])
        assert self._receive()[0][0] == w.WELCOME

    def send(self, frames: list[Any]) -> None:
        self.send_raw(msgpack.packb(frames, use_bin_type=True))

    def send_raw(self, data: bytes) -> None:
        """One lane message of any bytes (junk included)."""
        self.sock.sendall(struct.pack("<I", len(data)) + data)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "the worker closed the lane"
            data += chunk
        return data

    def _receive(self) -> list[Any]:
        (size,) = struct.unpack("<I", self._exactly(4))
        frames: list[Any] = msgpack.unpackb(self._exactly(size))
        return frames

    def until(self, done: Callable[[list[Any]], bool]) -> list[Any]:
        """Every frame received until ``done(frame)`` holds for one; that frame is last."""
        received: list[Any] = []
        while True:
            for frame in self._receive():
                received.append(frame)
                if done(frame):
                    return received

    def close(self) -> None:
        self.sock.close()
