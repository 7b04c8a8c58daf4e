"""The local lane, host side: Connect's msgpack batches over a unix socket, in Trio itself.

Frames and batching are those of the gRPC Connect stream (``_grpc.py``); only the
carrier differs: each batch is prefixed with its length (4 bytes, little-endian) and the
socket is driven by Trio tasks, so no message crosses a thread. ``send(frame)`` appends to a
pending list and wakes the writer once; every frame queued before the writer runs leaves in
the same write. The reader hands each read's frames to ``on_frames`` directly.

Over TCP (``TcpTarget``: a worker started with ``--listen``, see the proto's "Carrier 1 over
TCP") the same framing runs on a TCP stream, in TLS when the target has a context, after the
token proof; only the connection and that proof differ. Its HELLO may offer shared memory
(``shm_offer``, see ``_shared/_samehost.py``); ``shares_memory`` says whether the worker
took it.

Latency: when the lane is quiet, the first frame of a scheduler tick is written at once from
the caller (a non-blocking send), which saves waiting one tick for the writer; the frames
that follow in the same tick still go together through the writer. What ends a tick's eager
turn is the next read or the writer's next run, whichever comes first: the writer is not
woken for an eager send the socket took whole (that wake-up cost a task switch per call).
"""

from __future__ import annotations

import hmac
import socket
import ssl
import struct
from collections.abc import Callable
from typing import Any

import attrs
import msgpack
import trio

from .._shared import _frames as w
from .._shared import _samehost, _tcp
from ._describe import WorkerDescription, description_from_map
from ._errors import TransportError

_HEADER = struct.Struct("<I")
assert _HEADER.size == w.LANE_HEADER_BYTES


@attrs.frozen
class TcpTarget:
    """A worker listening on TCP: where, the token to prove, and TLS (None: plain TCP)."""

    url: str
    token: bytes = attrs.field(repr=False)
    tls: ssl.SSLContext | None = None
    server_hostname: str | None = None  # None: the url's host
    # The SHA-256 (hex) the worker's certificate must have, for a worker whose certificate
    # was made where it runs and reported to the host (tls is then a pinned context).
    pin: str | None = None


class LaneChannel:
    def __init__(
        self,
        socket_path: str,
        on_frames: Callable[[object], None],
        on_lost: Callable[[str], None],
        max_message: int,
        tcp: TcpTarget | None = None,
        shm_offer: tuple[dict[str, Any], _samehost.Probe] | None = None,
    ) -> None:
        """``socket_path``: the worker's unix socket, unless ``tcp`` says where it listens.
        ``shm_offer``: the HELLO's offer of shared memory and its probe (TCP only); the
        channel removes the probe once the handshake is over, whatever its outcome."""
        self._path = socket_path if tcp is None else tcp.url
        self._tcp = tcp
        self._shm_offer = shm_offer
        self.shares_memory = False  # the worker took the offer (proved it with the probe)
        self._on_frames = on_frames
        self._on_lost = on_lost
        self._max_message = max_message
        self._pending: list[Any] = []
        self._lot = trio.lowlevel.ParkingLot()
        self._stream: trio.abc.Stream | None = None
        self._sock: socket.socket | None = None  # the same socket, for eager sends (unix only)
        self._unsent = bytearray()  # eagerly sent bytes the socket did not take yet
        self._parked = False  # the writer waits for frames
        self._eager_used = False  # a frame went eagerly this tick; reset by the writer
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()
        self._closed = False

    async def open(self, nursery: trio.Nursery, timeout: float) -> WorkerDescription:
        """Connect, say HELLO, read WELCOME (the worker's description), start the pumps.

        Raises:
            TransportError: no connection or no WELCOME within ``timeout`` seconds.
        """
        try:
            with trio.fail_after(timeout):
                buffer = bytearray()
                if self._tcp is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self._sock.setblocking(False)
                    trio_sock = trio.socket.from_stdlib_socket(self._sock)
                    self._stream = trio.SocketStream(trio_sock)
                    await trio_sock.connect(self._path)
                else:
                    await self._open_tcp(self._tcp, buffer)
                stream = self._stream
                assert stream is not None
                offered = None if self._shm_offer is None else self._shm_offer[0]
                await stream.send_all(_pack([w.hello(shm=offered)]))
                messages: list[Any] = []
                while not messages:
                    data = await stream.receive_some(65536)
                    if not data:
                        raise TransportError(self._closed_in_handshake())
                    buffer += data
                    messages = self._parse(buffer)
            first, *rest = messages
            if not (type(first) is list and first and type(first[0]) is list and first[0]):
                raise TransportError(f"the worker did not answer HELLO on {self._path}")
            try:
                welcome = w.parse_from_worker(first[0])
                if type(welcome) is not w.Welcome:
                    raise w.ProtocolViolation(f"its first frame was {type(welcome).__name__}")
                describe = description_from_map(welcome.describe)
            except w.ProtocolViolation as exc:
                raise TransportError(
                    f"the worker did not answer HELLO with WELCOME on {self._path}: {exc}"
                ) from exc
            if self._shm_offer is not None:
                self.shares_memory = self._shm_offer[1].matches(welcome.describe)
        except BaseException as exc:
            if self._stream is not None:
                with trio.CancelScope(shield=True):
                    await self._stream.aclose()
            if isinstance(exc, TransportError) or not isinstance(exc, Exception):
                raise  # ours already, or cancellation
            cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
            raise TransportError(f"cannot open the lane {self._path}: {exc!r}{cause}") from exc
        finally:
            if self._shm_offer is not None:
                self._shm_offer[1].remove()  # read by now, or never to be
        nursery.start_soon(self._run, bytes(buffer), [f for m in [first[1:], *rest] for f in m])
        return describe

    async def _open_tcp(self, target: TcpTarget, buffer: bytearray) -> None:
        """Connect (TLS if configured), read the worker's nonce, send the token proof."""
        host, port = _tcp.parse_tcp_url(target.url)
        tcp = await trio.open_tcp_stream(host, port)
        stream: trio.abc.Stream = tcp
        self._stream = stream
        _tcp.tune_socket(tcp.socket)  # type: ignore[arg-type]  # a trio socket: same calls
        if target.tls is not None:
            secure = trio.SSLStream(tcp, target.tls, server_hostname=target.server_hostname or host)
            self._stream = stream = secure
            await secure.do_handshake()
            if target.pin is not None:
                self._check_pin(secure, target.pin)
        messages: list[Any] = []
        while not messages:
            try:
                data = await stream.receive_some(256)
            except trio.BrokenResourceError as exc:
                if target.tls is None:
                    raise
                data = b""
                cause = exc.__cause__
            else:
                cause = None
            if not data:
                raise TransportError(self._closed_before_nonce(target, cause))
            buffer += data
            messages = self._parse(buffer)
        nonce = messages[0]
        if len(messages) > 1 or not isinstance(nonce, bytes) or len(nonce) != _tcp.NONCE_BYTES:
            raise TransportError(f"{self._path} did not start with a nonce: not a worker")
        proof: bytes = msgpack.packb(_tcp.proof(target.token, nonce), use_bin_type=True)
        await stream.send_all(_HEADER.pack(len(proof)) + proof)

    def _check_pin(self, secure: trio.SSLStream[trio.SocketStream], pin: str) -> None:
        der = secure.getpeercert(binary_form=True)
        seen = _tcp.fingerprint(der) if der else "none"
        if not hmac.compare_digest(seen, pin):
            raise TransportError(
                f"the worker at {self._path} presented a certificate with SHA-256 {seen}, "
                f"not the {pin} its launcher reported: refusing to talk to it"
            )

    def _closed_before_nonce(self, target: TcpTarget, cause: BaseException | None) -> str:
        if target.tls is None:
            return f"the worker at {self._path} closed before its nonce"
        # TLS 1.3 lets a client finish its handshake before the server has checked the
        # client's certificate: a worker with --tls-client-ca that refuses ours (none, or
        # not signed by that CA) is seen here, as a close instead of the nonce.
        detail = f" ({cause})" if cause is not None else ""
        return (
            f"the worker at {self._path} closed the TLS connection before its nonce{detail}: "
            "it refused this host's TLS client certificate, most likely (a worker started "
            "with --tls-client-ca needs TLSConfig(cert=..., key=...) signed by that CA); "
            "its log says why"
        )

    def _closed_in_handshake(self) -> str:
        if self._tcp is None:
            return "the worker closed the lane during the handshake"
        return (
            f"the worker at {self._path} closed the connection after the token proof: it "
            "refused the token (give open_pool the token in the worker's --token-file); "
            "its log says why"
        )

    def send(self, frame: list[Any]) -> None:
        """Queue a frame; it leaves with everything queued before the writer runs."""
        if (
            self._parked
            and self._sock is not None
            and not self._eager_used
            and not self._pending
            and not self._unsent
        ):
            self._eager_used = True
            if self._send_now(_pack([frame])):
                self._lot.unpark()  # the socket took part of it: the writer sends the rest
            return
        self._pending.append(frame)
        if len(self._pending) == 1:
            self._lot.unpark()

    def _send_now(self, data: bytes) -> bool:
        """Send ``data`` without blocking; True if part of it is left for the writer."""
        assert self._sock is not None
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # the writer meets the error again and reports the lane lost
        if sent < len(data):
            self._unsent += data[sent:]
            return True
        return False

    async def aclose(self) -> set[int]:
        """Stop the pumps, close the socket; return ids of CALL and BATCH frames never written."""
        self._closed = True
        pending, self._pending = self._pending, []
        if self._scope is not None:
            self._scope.cancel()
            await self._done.wait()
        if self._stream is not None:
            await self._stream.aclose()
        return {f[1] for f in pending if f[0] in w.CALL_KINDS}

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
                    self._parked = True
                    try:
                        await self._lot.park()  # callers of this tick all queue before we run
                    finally:
                        self._parked = False
                self._eager_used = False
                frames, self._pending = self._pending, []
                data, self._unsent = bytes(self._unsent), bytearray()
                if frames:
                    data += b"".join(_pack(batch) for batch in w.split_batches(frames, w.call_size))
                if data:
                    await self._stream.send_all(data)
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
                self._eager_used = False  # a new tick: its first frame may go at once
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
                raise TransportError(f"an undecodable lane message: {exc!r}") from exc
            start = end
        del buffer[:start]
        return out

    def _lost(self, reason: str) -> None:
        if not self._closed:
            self._on_lost(reason)


def _pack(batch: list[Any]) -> bytes:
    data: bytes = msgpack.packb(batch, use_bin_type=True)
    return _HEADER.pack(len(data)) + data
