"""The payload codec and DLPack tensors (synchronous, no workers).

A tensor in host memory travels as the numpy array viewing it (inline, or through shared
memory when large) and arrives as a read-only numpy array; one in device memory is refused
before it is exported, with what to do instead. ``writable`` gives received arrays back as
writable copies.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import snakepit_trio as sp
from snakepit_trio._shared import _shm
from snakepit_trio._shared._codec import Outbound, decode, encode
from snakepit_trio._shared._segments import SegmentCache

LIMIT = 1 << 26
THRESHOLD = 1 << 12


class Tensor:
    """A DLPack producer backed by a numpy array (as a torch CPU tensor would be)."""

    def __init__(self, array: Any, device: tuple[int, int] = (1, 0)) -> None:
        self.array = array
        self.device = device
        self.exported = 0

    def __dlpack__(self, **kwargs: Any) -> Any:
        self.exported += 1
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.device


@pytest.fixture
def segments() -> Iterator[SegmentCache]:
    cache = SegmentCache(_shm.prefix("dlpacktest", "host"))
    yield cache
    for name in cache.free_names() + cache.out_names():
        _shm.unlink(name)


def _round_trip(value: Any, cache: SegmentCache | None) -> tuple[Any, list[str]]:
    out = None if cache is None else Outbound(cache, THRESHOLD)
    try:
        data = encode(value, what="the value", limit=LIMIT, shm=out)
        return decode(data, what="the value"), [] if out is None else list(out.names)
    finally:
        if out is not None:
            out.release()


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12.0).reshape(3, 4),
        np.arange(20, dtype=np.int16)[::3],  # strided: sent in C order
        np.zeros((2, 0, 3), dtype=np.uint8),
        np.array(2.5, dtype=np.float32),  # zero-dimensional
        np.array([True, False]),
        np.arange(1 << 12, dtype=np.float64),  # over the threshold: shared memory
    ],
    ids=["2-d", "strided", "empty", "0-d", "bool", "large"],
)
@pytest.mark.parametrize("path", ["inline", "shm"])
def test_a_host_tensor_arrives_as_a_read_only_numpy_array(
    array: Any, path: str, segments: SegmentCache
) -> None:
    tensor = Tensor(array)
    value, names = _round_trip({"t": [tensor]}, segments if path == "shm" else None)
    back = value["t"][0]
    assert type(back) is np.ndarray and not back.flags.writeable
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)
    assert tensor.exported >= 1
    assert bool(names) == (path == "shm" and array.nbytes >= THRESHOLD)


@pytest.mark.parametrize(
    ("device", "name"), [((2, 0), "CUDA"), ((10, 3), "ROCm"), ((8, 0), "Metal")]
)
@pytest.mark.parametrize("path", ["inline", "shm"])
def test_a_device_tensor_is_refused_with_what_to_do(
    device: tuple[int, int], name: str, path: str, segments: SegmentCache
) -> None:
    tensor = Tensor(np.zeros(1 << 12), device)
    with pytest.raises(sp.SerializationError) as info:
        _round_trip({"x": 1, "t": tensor}, segments if path == "shm" else None)
    text = str(info.value)
    assert f"at ['t']: a tensor of type 'Tensor' in {name} memory" in text, text
    assert f"DLPack device type {device[0]}, id {device[1]}" in text
    assert "call .cpu() (or copy it to host memory) first" in text
    assert tensor.exported == 0  # refused before anything was exported
    assert segments.out_names() == []


class _Unreadable(Tensor):
    def __dlpack__(self, **kwargs: Any) -> Any:
        raise BufferError("Cannot export a tensor that requires grad; use tensor.detach()")


class _BadDevice(Tensor):
    def __dlpack_device__(self) -> tuple[int, int]:
        raise RuntimeError("no device")


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (_Unreadable(np.zeros(3)), "numpy cannot take (BufferError: Cannot export a tensor"),
        (_BadDevice(np.zeros(3)), "whose __dlpack_device__() failed (RuntimeError: no device)"),
        (Tensor(np.array([None], dtype=object)), "of type 'Tensor' that numpy cannot take"),
    ],
    ids=["export raises", "device raises", "object dtype"],
)
def test_a_tensor_numpy_cannot_take_is_named(tensor: Any, message: str) -> None:
    with pytest.raises(sp.SerializationError) as info:
        encode({"t": tensor}, what="the value", limit=LIMIT)
    assert message in str(info.value), str(info.value)


def test_writable_copies_read_only_arrays_at_any_depth() -> None:
    held = np.arange(6.0)
    value, _ = _round_trip({"a": [np.arange(4), {"b": [np.ones(2), "s"]}], "n": 1}, None)
    value["own"] = held
    value["pair"] = (value["a"][0], "s")  # a tuple (none arrives, but one may be passed)
    copy = sp.writable(value)
    a, b = copy["a"][0], copy["a"][1]["b"][0]
    assert a.flags.writeable and b.flags.writeable and copy["pair"][0].flags.writeable
    a[0] = 99  # the received array is untouched
    assert value["a"][0][0] == 0 and np.array_equal(b, np.ones(2))
    assert type(copy["pair"]) is tuple and copy["pair"][1] == "s"
    assert copy["a"][1]["b"][1] == "s"
    assert copy["own"] is held  # already writable: kept
    assert copy["n"] == 1 and copy is not value and copy["a"] is not value["a"]


def test_writable_keeps_everything_else_as_it_is() -> None:
    blob, text = b"bytes", "text"
    assert sp.writable(blob) is blob and sp.writable(text) is text and sp.writable(None) is None
    read_only = np.arange(3)
    read_only.flags.writeable = False
    copy = sp.writable(read_only)
    assert copy.flags.writeable and np.array_equal(copy, read_only)
    assert sp.writable({(1, 2): [read_only]})[(1, 2)][0].flags.writeable


def test_writable_walks_any_depth_a_payload_holds_but_not_a_cycle() -> None:
    deep: Any = np.zeros(1)
    deep.flags.writeable = False
    for _ in range(1024):
        deep = [deep]
    copy = sp.writable(deep)
    for _ in range(1024):
        copy = copy[0]
    assert copy.flags.writeable
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="nested more than 1,024 levels deep"):
        sp.writable(cycle)


def test_writable_needs_no_trio() -> None:
    code = (
        "import sys\n"
        "from snakepit_trio import writable\n"
        "print(writable([1])[0], 'trio' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["1", "False"], out.stderr
