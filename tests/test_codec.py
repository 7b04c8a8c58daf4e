"""The payload codec: numpy arrays travel (read-only on arrival), nothing is pickled."""

from __future__ import annotations

import gc

import msgpack
import numpy as np
import pytest

import snakepit_trio as sp
from snakepit_trio._shared import _codec as codec
from snakepit_trio._shared import _shm
from snakepit_trio._shared._codec import Outbound, decode, encode
from snakepit_trio._shared._segments import SegmentCache


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12.0).reshape(3, 4),
        np.arange(10, dtype="<i2")[::2],  # not contiguous: sent in C order
        np.zeros((0, 3), dtype="<U3"),
        np.array(3.5),  # zero-dimensional
        np.arange(6, dtype=">u4").reshape(2, 3).T,  # big-endian, transposed
    ],
)
def test_arrays_round_trip_exactly_and_arrive_read_only(array: object) -> None:
    back = decode(encode({"a": [array]}, what="args", limit=1 << 20), what="args")["a"][0]
    assert back.dtype == array.dtype and back.shape == array.shape  # type: ignore[attr-defined]
    assert np.array_equal(back, array)
    assert not back.flags.writeable


def test_object_arrays_are_refused() -> None:
    with pytest.raises(sp.SerializationError, match="dtype=object"):
        encode(np.array([object()]), what="args", limit=1 << 20)


def test_array_size_counts_against_the_limit() -> None:
    with pytest.raises(sp.PayloadTooLarge):
        encode(np.zeros(1000), what="args", limit=4000)


class _FullShm(SegmentCache):
    def put(self, data: memoryview) -> str:
        raise OSError(28, "No space left on device")


def test_a_full_dev_shm_sends_large_buffers_inline() -> None:
    out = Outbound(_FullShm("snakepit-test-"), threshold=1024)
    value = {"array": np.arange(4096.0), "blob": b"x" * 4096, "small": b"y"}
    back = decode(encode(value, what="args", limit=1 << 20, shm=out), what="args")
    assert out.names == [] and out.size == 0
    assert np.array_equal(back["array"], value["array"])
    assert back["blob"] == value["blob"] and back["small"] == b"y"


def test_a_payload_that_fails_to_decode_hands_back_every_segment_it_names() -> None:
    cache = SegmentCache(_shm.prefix("codectest", "host"))
    out = Outbound(cache, threshold=1024)
    try:
        blob, array = b"x" * 4096, np.arange(1024.0)
        data = encode([blob, array, blob], what="args", limit=1 << 20, shm=out)
        first, second, third = out.names
        # The array's dtype, in its segment header, is made unreadable: decoding fails there,
        # after the first segment was copied and the second mapped, before the third.
        header = msgpack.packb([second, array.nbytes, "<f8", [1024]])
        broken = msgpack.packb([second, array.nbytes, "?!?", [1024]])  # the same length
        assert data.count(header) == 1
        told: list[str] = []
        with pytest.raises(sp.SerializationError, match="cannot decode args"):
            decode(data.replace(header, broken), what="args", unmapped=told.append)
        gc.collect()
        assert sorted(told) == sorted([first, second, third])  # each exactly once
    finally:
        out.release()
        for name in cache.free_names() + cache.out_names():
            _shm.unlink(name)


def test_decoding_without_a_listener_remembers_no_segment() -> None:
    cache = SegmentCache(_shm.prefix("codectest", "host"))
    out = Outbound(cache, threshold=1024)
    try:
        data = encode([b"x" * 4096, np.arange(1024.0)], what="args", limit=1 << 20, shm=out)
        for _ in range(3):
            decode(data, what="args")
        assert codec._plain_hook.__self__.taken == set()  # type: ignore[attr-defined]
    finally:
        out.release()
        for name in cache.free_names() + cache.out_names():
            _shm.unlink(name)


def test_a_segment_shorter_than_its_header_says_fails_to_decode() -> None:
    cache = SegmentCache(_shm.prefix("codectest", "host"))
    out = Outbound(cache, threshold=1024)
    try:
        data = encode([b"x" * 4096], what="args", limit=1 << 20, shm=out)
        [name] = out.names
        header = msgpack.packb([name, 4096])
        longer = msgpack.packb([name, 4097])  # the same length: only the size differs
        assert data.count(header) == 1
        told: list[str] = []
        with pytest.raises(sp.SerializationError, match="holds 4096 bytes, not 4097"):
            decode(data.replace(header, longer), what="args", unmapped=told.append)
        assert told == [name]  # handed back all the same
    finally:
        out.release()
        for name in cache.free_names() + cache.out_names():
            _shm.unlink(name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"x" * 1024, True),
        (bytearray(1024), True),
        (memoryview(b"x" * 2048)[::2], True),  # 1024 bytes, not contiguous
        ({"value": b"x" * 1024}, True),
        ([1, (2, {"deep": b"x" * 1024})], True),
        (b"x" * 1023, False),
        ("x" * 4096, False),  # text never goes to shared memory
        ([b"x" * 1024] + [b"x"] * 100, False),  # past what is looked at: the trial decides
    ],
)
def test_which_payloads_skip_the_trial_encoding(value: object, expected: bool) -> None:
    assert codec._holds_big_buffer(value, 1024) is expected
