"""The near-limit reference: fresh Trio servers on unix sockets, a Trio client, no pool.

What any pool of processes on this machine pays at least: a fresh interpreter that imports
trio and listens, a 5-byte request answered with 4 bytes, and length-prefixed 8-byte chunks
read in bulk. The suite's start, latency and stream targets are stated against it.

    python benchmarks/raw_peer.py serve PATH     # one server (the peer starts these)
"""

from __future__ import annotations

import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any

import trio

SEQ_CALLS = 2000
CHUNKS = 20_000
PING, STREAM = b"p", b"s"
CHUNK = b"x" * 8
FRAME = struct.pack(">I", len(CHUNK)) + CHUNK
SERVER = os.path.abspath(__file__)


async def _serve_connection(stream: trio.SocketStream) -> None:
    buf = b""
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return
        buf += data
        while len(buf) >= 5:
            op, arg = buf[:1], buf[1:5]
            buf = buf[5:]
            if op == PING:
                await stream.send_all(arg)
            else:
                (n,) = struct.unpack(">I", arg)
                sent = 0
                while sent < n:  # chunks leave in batches, as a stream's writer would
                    batch = min(n - sent, 512)
                    await stream.send_all(FRAME * batch)
                    sent += batch
                await stream.send_all(struct.pack(">I", 0))


async def serve(path: str, ready_fd: int = 1) -> None:
    """Listen on ``path``, say so on ``ready_fd``, serve until killed."""
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(16)
    listener = trio.SocketListener(sock)
    os.write(ready_fd, b"ready\n")
    await trio.serve_listeners(_serve_connection, [listener])


class _Client:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""

    async def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError("the server closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    async def ping(self, i: int) -> int:
        await self.stream.send_all(PING + struct.pack(">I", i))
        (value,) = struct.unpack(">I", await self._read(4))
        return int(value)

    async def stream_chunks(self, n: int, first: list[float] | None = None) -> int:
        t = time.perf_counter()
        await self.stream.send_all(STREAM + struct.pack(">I", n))
        count = 0
        while True:
            while len(self.buf) < 4:
                data = await self.stream.receive_some(65536)
                if not data:
                    raise EOFError("the server closed the connection")
                self.buf += data
            view, pos = self.buf, 0
            while pos + 4 <= len(view):
                (size,) = struct.unpack_from(">I", view, pos)
                if size == 0:
                    self.buf = view[pos + 4 :]
                    return count
                if pos + 4 + size > len(view):
                    break
                pos += 4 + size
                count += 1
                if first is not None and count == 1:
                    first.append(time.perf_counter() - t)
            self.buf = view[pos:]
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError("the server closed the connection")
            self.buf += data


class _Servers:
    """``n`` server processes, each listening on its own socket in a private folder."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.processes: list[trio.Process] = []

    async def start_one(self, i: int) -> _Client:
        path = os.path.join(self.folder, f"s{i}.sock")
        process = await trio.lowlevel.open_process(
            [sys.executable, SERVER, "serve", path],
            stdout=subprocess.PIPE,
        )
        self.processes.append(process)
        assert process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            data = await process.stdout.receive_some(64)
            if not data:
                raise RuntimeError("a raw server exited before it listened")
            line += data
        return _Client(await trio.open_unix_socket(path))

    def close(self) -> None:
        for process in self.processes:
            process.kill()


async def _with_servers(n: int, body: Any) -> Any:
    with tempfile.TemporaryDirectory(prefix="raw-peer-") as folder:
        servers = _Servers(folder)
        try:
            return await body(servers)
        finally:
            servers.close()
            for process in servers.processes:
                await process.wait()


def _forked_servers(folder: str, n: int) -> tuple[list[int], list[int]]:
    """``n`` servers forked from this process (trio already imported): pids, ready pipes."""
    pids, pipes = [], []
    for i in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: a fresh trio.run, never back into the caller's code
            code = 0
            try:
                os.close(r)
                trio.run(serve, os.path.join(folder, f"s{i}.sock"), w)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        pids.append(pid)
        pipes.append(r)
    return pids, pipes


class RawTrio:
    """Not a pool: the floor a pool of Trio-served processes is measured against."""

    name = "raw unix socket, Trio (reference)"

    def extra(self) -> dict[str, Any]:
        return {"start 8 workers, forked from the host ms": lambda: self.start_forked(8) * 1e3}

    def start_forked(self, n: int) -> float:
        """Seconds until ``n`` servers forked from this process have each answered a ping:
        the floor of any pool that forks its workers (no fresh interpreter on the way)."""
        with tempfile.TemporaryDirectory(prefix="raw-peer-") as folder:
            t = time.perf_counter()
            pids, pipes = _forked_servers(folder, n)

            async def ping_all() -> None:
                async def one(i: int) -> None:
                    async with trio.lowlevel.FdStream(pipes[i]) as ready:
                        await ready.receive_some(16)
                    client = _Client(await trio.open_unix_socket(f"{folder}/s{i}.sock"))
                    await client.ping(i)
                    await client.stream.aclose()

                async with trio.open_nursery() as nursery:
                    for i in range(n):
                        nursery.start_soon(one, i)

            try:
                trio.run(ping_all)
                return time.perf_counter() - t
            finally:
                for pid in pids:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)

    def start(self, n: int) -> float:
        """Seconds until ``n`` fresh interpreters serving with Trio have each answered."""

        async def body(servers: _Servers) -> float:
            t = time.perf_counter()

            async def one(i: int) -> None:
                client = await servers.start_one(i)
                await client.ping(i)
                await client.stream.aclose()

            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(one, i)
            return time.perf_counter() - t

        return trio.run(_with_servers, n, body)  # type: ignore[no-any-return]

    def seq(self) -> tuple[float, float]:
        async def body(servers: _Servers) -> tuple[float, float]:
            client = await servers.start_one(0)
            for i in range(200):
                await client.ping(i)
            lat = []
            for i in range(SEQ_CALLS):
                t = time.perf_counter()
                await client.ping(i)
                lat.append(time.perf_counter() - t)
            lat.sort()
            return lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99)] * 1e6

        return trio.run(_with_servers, 1, body)  # type: ignore[no-any-return]

    def stream(self) -> tuple[float, float]:
        """Chunks/s of one stream of 20,000 8-byte chunks, and the median first-chunk ms."""

        async def body(servers: _Servers) -> tuple[float, float]:
            client = await servers.start_one(0)
            await client.stream_chunks(100)
            firsts: list[float] = []
            for _ in range(50):
                await client.stream_chunks(1, firsts)
            t = time.perf_counter()
            count = await client.stream_chunks(CHUNKS)
            return count / (time.perf_counter() - t), statistics.median(firsts) * 1e3

        return trio.run(_with_servers, 1, body)  # type: ignore[no-any-return]


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"] or len(sys.argv) != 3:
        raise SystemExit(__doc__)
    trio.run(serve, sys.argv[2])
