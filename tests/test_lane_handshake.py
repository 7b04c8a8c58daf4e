"""The local lane's handshake refuses a peer that does not speak it, with TransportError."""

from __future__ import annotations

import os
import socket
import struct
import tempfile

import pytest
import trio

from snakepit_trio._transport._grpc import TransportError
from snakepit_trio._transport._lane import LaneChannel


@pytest.mark.parametrize(
    "reply",
    [
        b"",  # hangs up
        struct.pack("<I", 3) + b"\x93\x01\x02",  # msgpack, but not WELCOME
        struct.pack("<I", 2) + b"\xc1\xc1",  # not msgpack
        struct.pack("<I", 4) + b"\x91\x92\x10\x05",  # WELCOME without a description
        struct.pack("<I", 2**31),  # a length over the limit
    ],
)
async def test_a_bad_handshake_is_a_transport_error(reply: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.lane")
        listener = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await listener.bind(path)
        listener.listen()

        async def serve() -> None:
            conn, _ = await listener.accept()
            with conn:
                await conn.recv(1024)  # HELLO
                if reply:
                    await conn.send(reply)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve)
                lane = LaneChannel(path, lambda frames: None, lambda reason: None, 1 << 20)
                with pytest.raises(TransportError):
                    await lane.open(nursery, timeout=5)
        listener.close()
