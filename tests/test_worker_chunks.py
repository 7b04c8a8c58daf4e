"""The worker in memory, fed frames directly (no host): how chunks are encoded and leave.

A host that named "chunks" in its HELLO gets the chunks that pile up in the outbox as CHUNKS
frames: a CHUNK joins the CHUNKS queued just before it, when it is of the same call, and
only up to MAX_CHUNKS chunks and MAX_BATCH_BYTES bytes. Anything else queued in between,
or a send, starts a new frame, so the host sees every frame in the order it was made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from snakepit_trio._errors import PayloadTooLarge, SerializationError
from snakepit_trio._shared import _frames as w
from snakepit_trio._shared._codec import encode
from snakepit_trio.worker import Adapter, tool
from snakepit_trio.worker._adapter import collect_tools
from snakepit_trio.worker._connection import Connection
from snakepit_trio.worker._runtime import Runtime


class Nothing(Adapter):
    @tool
    def noop(self) -> None:
        return None

    @tool
    def count(self, n: int) -> Iterator[int]:
        yield from range(n)


def run(
    test: Any, capabilities: tuple[str, ...] = (w.CAP_CHUNKS,), max_payload: int = 1 << 20
) -> None:
    async def main() -> None:
        runtime = Runtime(collect_tools(Nothing()), capacity=1, max_payload=max_payload)
        conn = Connection(runtime)
        conn.handle([w.hello(capabilities=capabilities)])
        try:
            test(conn)
        finally:
            runtime.threads.close()
            runtime.executor.shutdown(wait=False)

    asyncio.run(main())


def test_chunks_of_one_call_join_until_another_frame_comes_between() -> None:
    def test(conn: Connection) -> None:
        for frame in (
            w.chunk(1, b"a"),
            w.chunk(1, b"b"),
            w.progress(1, 1, None, None),
            w.chunk(1, b"c"),
            w.chunk(2, b"d"),
            w.chunk(1, b"e"),
        ):
            conn.emit(frame)
        assert conn.outbox == [
            [w.CHUNKS, 1, [b"a", b"b"]],
            w.progress(1, 1, None, None),
            [w.CHUNKS, 1, [b"c"]],
            [w.CHUNKS, 2, [b"d"]],
            [w.CHUNKS, 1, [b"e"]],
        ]
        assert conn.wake.is_set()

    run(test)


def test_a_chunks_frame_stops_at_max_chunks() -> None:
    def test(conn: Connection) -> None:
        for i in range(w.MAX_CHUNKS + 1):
            conn.emit(w.chunk(1, i.to_bytes(2, "big")))
        assert [len(f[2]) for f in conn.outbox] == [w.MAX_CHUNKS, 1]
        payloads = [p for f in conn.outbox for p in f[2]]
        assert payloads == [i.to_bytes(2, "big") for i in range(w.MAX_CHUNKS + 1)]

    run(test)


def test_a_chunks_frame_stops_at_max_batch_bytes_and_a_larger_chunk_goes_alone() -> None:
    third = w.MAX_BATCH_BYTES // 3

    def test(conn: Connection) -> None:
        for size in (third, third, third, 2, w.MAX_BATCH_BYTES + 1, 5):
            conn.emit(w.chunk(1, b"x" * size))
        assert [[len(p) for p in f[2]] for f in conn.outbox] == [
            [third, third, third],
            [2],
            [w.MAX_BATCH_BYTES + 1],
            [5],
        ]
        assert all(w.payload_size(f) <= w.MAX_BATCH_BYTES for f in conn.outbox if len(f[2]) > 1)

    run(test)


def test_a_chunk_after_a_send_starts_a_new_frame_and_the_sent_one_is_not_changed() -> None:
    def test(conn: Connection) -> None:
        conn.emit(w.chunk(1, b"a"))
        [message] = conn.take_batches()
        conn.emit(w.chunk(1, b"b"))
        assert msgpack.unpackb(message) == [[w.CHUNKS, 1, [b"a"]]]
        assert conn.outbox == [[w.CHUNKS, 1, [b"b"]]]

    run(test)


def test_a_host_that_did_not_name_chunks_gets_chunk_frames() -> None:
    def test(conn: Connection) -> None:
        conn.emit(w.chunk(1, b"a"))
        conn.emit(w.chunks(1, [b"b", b"c"]))  # a sync generator's burst
        conn.emit(w.chunk(1, b"d"))
        assert conn.outbox == [w.chunk(1, p) for p in (b"a", b"b", b"c", b"d")]

    run(test, capabilities=(w.CAP_HOST_TOOLS, w.CAP_EVENTS))


def test_a_burst_joins_the_run_and_is_cut_at_the_limits() -> None:
    # A sync generator's burst arrives as one CHUNKS: it joins the CHUNKS queued before it
    # (same call, nothing between) and is cut where a frame would pass MAX_CHUNKS.
    def test(conn: Connection) -> None:
        conn.emit(w.chunk(1, b"a"))
        conn.emit(w.chunks(1, [bytes([i % 256]) for i in range(w.MAX_CHUNKS)]))
        conn.emit(w.chunks(2, [b"x"]))
        conn.emit(w.end(2))
        conn.emit(w.chunks(1, [b"y", b"z"]))
        shapes = [(f[0], f[1], len(f[2]) if f[0] == w.CHUNKS else None) for f in conn.outbox]
        assert shapes == [
            (w.CHUNKS, 1, w.MAX_CHUNKS),
            (w.CHUNKS, 1, 1),
            (w.CHUNKS, 2, 1),
            (w.END, 2, None),
            (w.CHUNKS, 1, 2),
        ]
        payloads = [p for f in conn.outbox if f[0] == w.CHUNKS and f[1] == 1 for p in f[2]]
        assert payloads == [b"a", *(bytes([i % 256]) for i in range(w.MAX_CHUNKS)), b"y", b"z"]

    run(test)


@pytest.mark.parametrize(
    "value", [0, -1, 2**64 - 1, -(2**63), 1.5, True, None, b"", b"x" * 1024, b"x" * 1025]
)
def test_small_values_are_encoded_as_the_codec_encodes_them(value: Any) -> None:
    # Tiny scalars and short bytes skip the codec's checks (nothing to check): same bytes.
    def test(conn: Connection) -> None:
        ours = conn.runtime.encode(value, what="chunk")
        assert ours == encode(value, what="chunk", limit=1 << 20)

    run(test)


def test_what_the_codec_refuses_is_refused_the_same_way() -> None:
    def test(conn: Connection) -> None:
        with pytest.raises(SerializationError, match="64-bit range"):
            conn.runtime.encode(2**64, what="chunk of 'count'")
        assert conn.runtime.encode(b"x" * 7, what="chunk") == b"\xc4\x07xxxxxxx"  # 9: fits
        with pytest.raises(PayloadTooLarge):
            conn.runtime.encode(b"x" * 15, what="chunk")  # 17 bytes encoded: over the limit

    run(test, max_payload=16)


class BrokenHandOver(Connection):
    """A connection whose hand-over of a burst fails (an internal error, not the tool's)."""

    def emit(self, frame: list[Any]) -> None:
        if frame[0] == w.CHUNKS:
            raise RuntimeError("the outbox refused the burst")
        super().emit(frame)


def test_a_burst_that_cannot_be_handed_over_ends_the_stream_with_its_error() -> None:
    # Not lost in the loop's exception handler: the stream fails, and never ends with END.
    async def main() -> list[Any]:
        runtime = Runtime(collect_tools(Nothing()), capacity=1, max_payload=1 << 20)
        conn = BrokenHandOver(runtime)
        conn.handle([w.hello(capabilities=(w.CAP_CHUNKS,))])
        conn.handle([w.call(1, "count", msgpack.packb({"n": 3}), None, None, 8)])
        try:
            await asyncio.wait_for(runtime.drain(), timeout=10)
        finally:
            runtime.threads.close()
            runtime.executor.shutdown(wait=True)
        return [f for f in conn.outbox if f[1] == 1]

    frames = asyncio.run(main())
    assert [f[0] for f in frames] == [w.ERROR], frames
    assert frames[0][2] == "RuntimeError" and "refused the burst" in frames[0][3]
