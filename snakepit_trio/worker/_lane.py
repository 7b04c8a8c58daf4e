"""The local lane: the Connect stream's msgpack batches over a plain unix socket.

Same frames as Connect (see proto/snakepit/v1/worker.proto), each batch prefixed with its
length as a 4-byte little-endian unsigned int. No HTTP/2, no protobuf per message: a round
trip costs a fraction of gRPC's, which matters for sequential calls. gRPC stays the contract
for control, remote and other-language workers; the host uses this lane only for workers it
started itself.

Handshake: the host's first batch is ``[[HELLO, protocol]]``; the worker answers
``[[WELCOME, describe]]`` where ``describe`` is its description map (``describe_map``).

Over TCP (``--listen tcp://HOST:PORT``) the same framing runs, optionally inside TLS, after a
token proof: the worker sends a nonce, the host answers HMAC-SHA256(token, nonce ||
"snakepit.v1") (``_shared/_tcp.py``). A connection that fails TLS, sends a wrong proof or
anything else is logged once and closed; the others are not disturbed.

Shared memory over TCP: a host on this machine offers it in its HELLO (``shm``); the worker
checks the offer (``_shared/_samehost.py``: same host id, and the host's probe segment opens
here), then answers with the probe's bytes in WELCOME and puts that connection's large
results in segments under the prefix the host gave. Any other TCP connection is inline. The
connection's segments are removed when it ends.

``last_heard`` is when any admitted host last sent a batch (the host PINGs each endpoint
worker every heartbeat interval): ``--orphan-timeout`` measures the host's absence from it,
and ``drop_silent`` ends each connection silent that long (a host gone without a FIN: its
calls would otherwise hold their slots until TCP keepalive notices, or forever behind a
middlebox that keeps the connection open).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import struct
from typing import Any

import msgpack

from .._shared import _frames as w
from .._shared import _samehost, _tcp
from ._connection import Connection
from ._runtime import Memory, Runtime

log = logging.getLogger("snakepit_trio.worker")

_HEADER = struct.Struct("<I")

# A peer gets this long to finish TLS and prove the token; then its connection is dropped.
HANDSHAKE_TIMEOUT = 10.0


class Refused(Exception):
    """A TCP peer failed TLS or the token proof (the message says which)."""


class LaneServer:
    def __init__(self, runtime: Runtime, describe: dict[str, Any], max_message: int) -> None:
        self._describe = describe
        self._runtime = runtime
        self._max_message = max_message
        self._server: asyncio.AbstractServer | None = None
        self._handlers: dict[asyncio.Task[None], Connection] = {}
        # Each admitted connection's writer and the loop's clock when its host last sent.
        self._heard: dict[asyncio.Task[None], tuple[asyncio.StreamWriter, float]] = {}
        self._token: bytes | None = None
        self._tls: ssl.SSLContext | None = None
        self._accepting: asyncio.Future[None] | None = None
        self._accepted: set[asyncio.Future[None]] = set()
        self._forgetting: set[asyncio.Future[None]] = set()  # see _forget_memory
        # The loop's clock when a host last sent anything (a batch of frames); starts at
        # creation, so a worker no host ever reaches is an orphan after the timeout too.
        self.last_heard = asyncio.get_running_loop().time()

    async def start(self, path: str) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=path)
        os.chmod(path, 0o600)

    async def start_tcp(
        self, host: str, port: int, token: bytes, tls: ssl.SSLContext | None
    ) -> int:
        """Listen on ``host:port`` (0: any free port); return the port it listens on."""
        self._token, self._tls = token, tls
        listener = socket.create_server((host, port), family=_family(host), backlog=128)
        listener.setblocking(False)
        self._accepting = asyncio.ensure_future(self._accept(listener))
        return int(listener.getsockname()[1])

    async def _accept(self, listener: socket.socket) -> None:
        # Our own accept loop rather than start_server(ssl=...): that one drops a failed TLS
        # handshake silently, and a refused peer is logged here, once.
        loop = asyncio.get_running_loop()
        try:
            while True:
                sock, peer = await loop.sock_accept(listener)
                task = asyncio.ensure_future(self._serve_tcp(sock, peer))
                self._accepted.add(task)
                task.add_done_callback(self._accepted.discard)
        finally:
            listener.close()

    async def _serve_tcp(self, sock: socket.socket, peer: object) -> None:
        loop = asyncio.get_running_loop()
        writer: asyncio.StreamWriter | None = None
        try:
            _tcp.tune_socket(sock)
            reader = asyncio.StreamReader(limit=1 << 16)
            protocol = asyncio.StreamReaderProtocol(reader)
            try:
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol,
                    sock,
                    ssl=self._tls,
                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT if self._tls else None,
                )
            except (ssl.SSLError, ConnectionError, OSError, TimeoutError) as exc:
                raise Refused(f"TLS handshake failed ({_ssl_reason(exc)})") from None
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            await asyncio.wait_for(self._prove(reader, writer), HANDSHAKE_TIMEOUT)
        except (Refused, TimeoutError, ConnectionError, OSError) as exc:
            reason = "no token proof in time" if isinstance(exc, TimeoutError) else str(exc)
            log.warning("refused a connection from %s: %s", peer, reason or repr(exc))
            if writer is not None:
                writer.close()
            else:
                sock.close()
            return
        except BaseException:
            if writer is not None:
                writer.close()
            else:
                sock.close()
            raise
        # Admitted: from now on close() lets it finish what it owes, like any connection.
        self._accepted.discard(asyncio.current_task())
        await self._serve(reader, writer, peer)

    async def close(self, timeout: float = 2.0) -> None:
        """Stop accepting; each connection sends what it owes, then closes (bounded).

        Called once the runtime has drained, so no call is left to wait for.
        """
        if self._server is not None:
            self._server.close()
        if self._accepting is not None:
            self._accepting.cancel()
        for task in list(self._accepted):
            task.cancel()  # peers still in TLS or the token proof
        for conn in self._handlers.values():
            conn.reading_done = True  # take nothing more; leave once the outbox is sent
            conn.wake.set()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=timeout)

    def drop_silent(self, timeout: float) -> None:
        """End each TCP connection whose host has sent nothing for ``timeout`` seconds:
        its calls are cancelled, as when a host closes its connection."""
        now = asyncio.get_running_loop().time()
        for task, (writer, heard) in list(self._heard.items()):
            if now - heard >= timeout:
                del self._heard[task]
                log.warning(
                    "dropping a connection from %s: its host sent nothing for %g s "
                    "(--orphan-timeout)",
                    writer.get_extra_info("peername"),
                    timeout,
                )
                writer.transport.abort()  # no flush: nothing reaches that host any more
                task.cancel()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object = None
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        conn = Connection(self._runtime)
        if self._token is not None:
            conn.memory = None  # over TCP: only what this host's HELLO offers and we accept
        self._handlers[task] = conn
        if self._token is not None:  # TCP: a host may vanish without a word
            self._heard[task] = (writer, asyncio.get_running_loop().time())
        reading = asyncio.ensure_future(self._read(conn, reader, peer, task))
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
            self._heard.pop(task, None)
            if conn.memory is not None and conn.memory is not self._runtime.memory:
                forgetting = asyncio.ensure_future(self._forget_memory(conn))
                self._forgetting.add(forgetting)
                forgetting.add_done_callback(self._forgetting.discard)

    async def _forget_memory(self, conn: Connection) -> None:
        """Remove the segments of a TCP host's connection once its last call has ended: a
        cancelled call may still be putting its result in one. (The host sweeps them too,
        if it is still there to.)"""
        assert conn.memory is not None
        conn.reading_done = True  # so each call's end wakes us (Connection._call_done)
        while conn.calls:
            conn.wake.clear()
            await conn.wake.wait()
        conn.memory.segments.remove_all()

    def _welcome(self, conn: Connection, hello: w.Hello, peer: object) -> dict[str, Any]:
        """The description for WELCOME; over TCP, with the probe's bytes if this worker
        takes the host's offer of shared memory (and ``conn`` then uses it)."""
        if self._token is None or hello.shm is None:
            return self._describe
        accepted, why = _samehost.accept(hello.shm)
        if accepted is None:
            log.info("payloads from %s travel inline: %s", peer, why)
            return self._describe
        log.info("payloads from %s go through shared memory: it is on this host", peer)
        conn.memory = Memory(accepted.segments, accepted.threshold)
        return {**self._describe, "shm": accepted.proof}

    async def _prove(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send a nonce, check the host's token proof; raise Refused saying what failed."""
        assert self._token is not None
        nonce = _tcp.new_nonce()
        challenge = msgpack.packb(nonce, use_bin_type=True)
        writer.write(_HEADER.pack(len(challenge)) + challenge)
        await writer.drain()
        try:
            (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
            data = await reader.readexactly(size) if size <= 64 else b""
        except asyncio.IncompleteReadError:
            raise Refused("it closed the connection before proving the token") from None
        try:
            given = msgpack.unpackb(data)
        except (ValueError, TypeError, msgpack.UnpackException):  # untrusted bytes
            raise Refused("its first message is not a token proof") from None
        if not _tcp.proof_is_valid(self._token, nonce, given):
            raise Refused("wrong token proof (the host's token differs from this worker's)")

    async def _read(
        self,
        conn: Connection,
        reader: asyncio.StreamReader,
        peer: object,
        task: asyncio.Task[None],
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                header = await reader.readexactly(_HEADER.size)
                (size,) = _HEADER.unpack(header)
                if size > self._max_message:
                    log.warning("lane message of %d bytes is over the limit; closing", size)
                    return
                data = await reader.readexactly(size)
                self.last_heard = now = loop.time()
                if task in self._heard:
                    self._heard[task] = (self._heard[task][0], now)
                try:
                    frames = msgpack.unpackb(data, raw=False, strict_map_key=False)
                except Exception:
                    log.warning("ignoring an undecodable lane batch of %d bytes", size)
                    continue
                hello = _hello(frames[0]) if isinstance(frames, list) and frames else None
                if hello is not None:
                    conn.emit(w.welcome(self._welcome(conn, hello, peer)))
                conn.handle(frames)  # HELLO included: it says what the host serves
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            conn.reading_done = True
            conn.wake.set()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no handshake in time"
    return getattr(exc, "reason", None) or str(exc) or type(exc).__name__


def _hello(frame: object) -> w.Hello | None:
    # Asked of every batch's first frame: only a HELLO is parsed here (the connection
    # parses every frame, this one included, when it handles the batch).
    if type(frame) is not list or not frame or frame[0] != w.HELLO:
        return None
    try:
        parsed = w.parse_from_host(frame)
    except w.ProtocolViolation:
        return None
    return parsed if type(parsed) is w.Hello else None
