"""Contract: hostile input on both carriers leaves a worker answering (no pool: raw frames).

Each test starts a worker the way the pool does and speaks to it directly: junk batches,
frames of every kind with junk fields, frames out of order, bytes that are not msgpack and
oversized lane messages. The worker ignores what it cannot read, answers a CALL it can, and
hangs up only on a lane message over its limit (that connection alone).
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snakepit_trio._shared import _frames as w
from tests.e2e.wire_helpers import Lane, exchange, run, start_worker

TRANSPORT_AGNOSTIC = True  # each test picks its carrier itself

frame_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=10) | st.binary(max_size=10),
    lambda inner: st.lists(inner, max_size=8),
    max_leaves=20,
)  # fmt: skip
frames = st.lists(
    st.one_of(
        frame_values,
        st.tuples(st.sampled_from(sorted(w.TABLE)), frame_values).map(list),  # junk fields
        st.tuples(st.sampled_from([1, 2, 4]), st.integers(-5, 5)).map(list),  # out of order
    ),
    max_size=10,
)
CALL = [0, 4242, "add", msgpack.packb({"a": 41}), None, None, 0]
ABUSE = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def worker(adapter: str, runtime: str) -> Iterator[tuple[str, str]]:
    """A contract worker serving both carriers: (gRPC socket, lane socket). It must still
    live at the end, and exit 0 on SIGTERM."""
    with tempfile.TemporaryDirectory() as tmp:
        lane = os.path.join(tmp, "w.lane")
        with start_worker(adapter, "--lane", lane, runtime=runtime) as (sock, proc):
            yield sock, lane
            assert proc.poll() is None, "the worker must still be alive"
            proc.terminate()
            assert proc.wait(timeout=10) == 0


def _answered(frames: list[Any]) -> bool:
    return any(frame[:2] == [10, 4242] for frame in frames)


@ABUSE
@given(batches=st.lists(frames | frame_values, min_size=1, max_size=5))
def test_junk_on_connect_leaves_the_worker_answering(
    worker: tuple[str, str], batches: list[Any]
) -> None:
    messages = [msgpack.packb(batch) for batch in batches]
    messages += [b"\xc1\xc1", msgpack.packb([w.hello(), CALL])]  # not msgpack, then a call
    [result] = [f for f in run(worker[0], exchange(messages, _answered)) if f[:2] == [10, 4242]]
    assert msgpack.unpackb(result[2]) == 42


@ABUSE
@given(batches=st.lists(frames | frame_values, min_size=1, max_size=5))
def test_junk_on_the_lane_leaves_the_worker_answering(
    worker: tuple[str, str], batches: list[Any]
) -> None:
    lane = Lane(worker[1])
    try:
        for batch in batches:
            lane.send_raw(msgpack.packb(batch))
        lane.send_raw(b"\xc1\xc1")
        lane.send([CALL])
        [result] = [f for f in lane.until(lambda f: f[:2] == [10, 4242]) if f[0] == 10]
        assert msgpack.unpackb(result[2]) == 42
    finally:
        lane.close()


def test_an_oversized_lane_message_closes_only_that_connection(worker: tuple[str, str]) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(worker[1])
        sock.sendall(struct.pack("<I", 2**31))  # claims 2 GiB
        assert sock.recv(1) == b""  # the worker hung up on it
    lane = Lane(worker[1])  # and still serves others
    try:
        lane.send([CALL])
        assert any(f[:2] == [10, 4242] for f in lane.until(lambda f: f[:2] == [10, 4242]))
    finally:
        lane.close()


def test_a_malformed_call_is_answered_with_a_protocol_error(worker: tuple[str, str]) -> None:
    lane = Lane(worker[1])
    try:
        lane.send([[0, 7, "add", "not bytes", None, None, 0]])  # args must be bin
        [error] = lane.until(lambda f: f[:2] == [13, 7])[-1:]
        assert error[5] == "protocol"
        lane.send([[0, 8, "nope", b"", None, None, 0]])
        [error] = lane.until(lambda f: f[:2] == [13, 8])[-1:]
        assert error[5] == "unknown_tool"
        lane.send([[0, 9, "add", msgpack.packb({"b": 1}), None, None, 0]])
        [error] = lane.until(lambda f: f[:2] == [13, 9])[-1:]
        assert error[5] == "invalid_arguments"
        lane.send([CALL])
        assert lane.until(lambda f: f[:2] == [10, 4242])[-1][:2] == [10, 4242]
    finally:
        lane.close()


def _stream(lane: Lane, call_id: int, n: int) -> list[Any]:
    """Call ``count`` (an async generator that yields ``n`` ints without pausing) with
    credit for all of them and one more (a generator asks for its next value only when it
    has credit: that is how it learns it has ended); every chunk frame of that call, up to
    its END."""
    lane.send([[0, call_id, "count", msgpack.packb({"n": n}), None, None, n + 1]])
    frames = lane.until(lambda f: f[0] in (w.END, w.ERROR) and f[1] == call_id)
    assert frames[-1][0] == w.END, frames[-1]
    return [f for f in frames if f[0] in (w.CHUNK, w.CHUNKS) and f[1] == call_id]


def _values(frames: list[Any]) -> list[Any]:
    payloads = [p for f in frames for p in (f[2] if f[0] == w.CHUNKS else [f[2]])]
    return [msgpack.unpackb(p) for p in payloads]


def test_chunks_that_pile_up_leave_in_one_chunks_frame_to_a_host_that_reads_them(
    worker: tuple[str, str],
) -> None:
    # The generator yields 600 values in one pass of the worker's loop: they pile up before
    # the writer runs, so they leave in CHUNKS frames of at most 512 chunks each.
    lane = Lane(worker[1], w.hello(capabilities=(w.CAP_CHUNKS,)))
    try:
        frames = _stream(lane, 1, 600)
        assert _values(frames) == list(range(600))
        assert {f[0] for f in frames} == {w.CHUNKS}
        assert len(frames) < 600 and max(len(f[2]) for f in frames) <= w.MAX_CHUNKS
    finally:
        lane.close()


def test_a_host_that_did_not_name_chunks_gets_one_chunk_frame_each(
    worker: tuple[str, str],
) -> None:
    lane = Lane(worker[1], w.hello(capabilities=()))
    try:
        frames = _stream(lane, 1, 600)
        assert _values(frames) == list(range(600))
        assert {f[0] for f in frames} == {w.CHUNK} and len(frames) == 600
    finally:
        lane.close()
