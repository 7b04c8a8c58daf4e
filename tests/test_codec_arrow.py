"""The payload codec and Arrow tables (synchronous, no workers): codes 4 and 5.

A table (or RecordBatch, or any ``__arrow_c_stream__`` exporter) travels as an Arrow IPC
stream, inline or in a shared-memory segment, anywhere in a value, and arrives as a
``pyarrow.Table`` whose buffers view the received bytes. What cannot travel, or does not
parse, is a SerializationError, never an error of pyarrow's; and pyarrow is imported only
when an Arrow value is met.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import msgpack
import numpy as np
import pyarrow as pa
import pytest

import snakepit_trio as sp
from snakepit_trio._shared import _arrow, _shm
from snakepit_trio._shared._codec import (
    ARROW_EXT,
    SHM_ARROW_EXT,
    Outbound,
    decode,
    encode,
    segment_names,
)
from snakepit_trio._shared._segments import SegmentCache

LIMIT = 1 << 26
THRESHOLD = 1 << 14  # tables whose stream is 16 KiB or more go to shared memory ("shm" runs)

pytestmark = pytest.mark.skipif(not _shm.available(), reason="needs /dev/shm")


@pytest.fixture
def segments() -> Iterator[SegmentCache]:
    cache = SegmentCache(_shm.prefix("arrowtest", "host"))
    yield cache
    for name in cache.free_names() + cache.out_names():
        _shm.unlink(name)


def _encode(value: Any, cache: SegmentCache | None, **kwargs: Any) -> tuple[bytes, Outbound | None]:
    out = None if cache is None else Outbound(cache, THRESHOLD)
    return encode(value, what="the value", limit=LIMIT, shm=out, **kwargs), out


def _round_trip(value: Any, cache: SegmentCache | None) -> Any:
    data, out = _encode(value, cache)
    try:
        return decode(data, what="the value")
    finally:
        if out is not None:
            out.release()


def _tables() -> dict[str, pa.Table]:
    n = 5000  # about 100 KiB of stream: over THRESHOLD
    rng = np.random.default_rng(7)
    return {
        "numbers": pa.table({"i": np.arange(n), "f": rng.random(n), "b": rng.random(n) > 0.5}),
        "strings and nulls": pa.table(
            {
                "s": [None if i % 7 == 0 else f"row {i}" for i in range(n)],
                "n": pa.array([None if i % 3 else i for i in range(n)], pa.int32()),
            }
        ),
        "nested lists and structs": pa.table(
            {
                "l": [[i, None, i + 1] if i % 5 else None for i in range(n)],
                "st": [{"x": i, "y": str(i)} for i in range(n)],
            }
        ),
        "dictionary, timestamps, decimals": pa.table(
            {
                "d": pa.array(["a", "b", "a"] * 100).dictionary_encode(),
                "t": pa.array(np.arange(300), pa.timestamp("ms", tz="UTC")),
                "m": pa.array([1, 2, 3] * 100, pa.decimal128(10, 2)),
            }
        ),
        "several chunks": pa.concat_tables(
            [pa.table({"c": np.arange(k, k + 10)}) for k in range(3)]
        ),
        "a slice": pa.table({"s": [str(i) for i in range(n)], "i": np.arange(n)}).slice(17, 999),
        "no rows": pa.table({"a": pa.array([], pa.int64()), "s": pa.array([], pa.string())}),
        "no columns": pa.table({}),
        "schema metadata": pa.table({"a": [1]}).replace_schema_metadata({"k": "v"}),
    }


TABLES = _tables()


@pytest.mark.parametrize("path", ["inline", "shm"])
@pytest.mark.parametrize("name", list(TABLES))
def test_tables_round_trip_exactly(name: str, path: str, segments: SegmentCache) -> None:
    table = TABLES[name]
    back = _round_trip(table, segments if path == "shm" else None)
    assert type(back) is pa.Table
    assert back.schema.equals(table.schema, check_metadata=True)
    assert back.equals(table)


@pytest.mark.parametrize("path", ["inline", "shm"])
def test_tables_travel_anywhere_in_a_value(path: str, segments: SegmentCache) -> None:
    small, big = TABLES["a slice"].slice(0, 3), TABLES["numbers"]
    value = {"t": [small, {"deep": (big, 1)}], "other": np.arange(3), "x": "y"}
    back = _round_trip(value, segments if path == "shm" else None)
    assert back["t"][0].equals(small) and back["t"][1]["deep"][0].equals(big)
    assert back["t"][1]["deep"][1] == 1 and back["x"] == "y"
    assert np.array_equal(back["other"], np.arange(3))


@pytest.mark.parametrize("path", ["inline", "shm"])
def test_a_record_batch_arrives_as_a_table(path: str, segments: SegmentCache) -> None:
    batch = TABLES["numbers"].combine_chunks().to_batches()[0]
    back = _round_trip({"b": batch}, segments if path == "shm" else None)["b"]
    assert type(back) is pa.Table and back.equals(pa.Table.from_batches([batch]))
    [again] = back.to_batches()
    assert again.equals(batch)


def test_a_peer_that_keeps_code_4_as_bytes_may_send_it_back() -> None:
    # As a worker in another language may: it reads extension 4 as opaque bytes (no hook),
    # keeps them, and returns them in its own msgpack, where they are the same table.
    table = TABLES["nested lists and structs"]
    sent = encode({"t": table}, what="args", limit=LIMIT)
    kept = msgpack.unpackb(sent, raw=False)["t"]
    assert kept == msgpack.ExtType(ARROW_EXT, _arrow.to_bytes(table))
    returned = msgpack.packb([kept, "other"], use_bin_type=True)
    back, other = decode(returned, what="result")
    assert back.equals(table) and other == "other"


def test_the_size_decides_inline_or_shared_memory(segments: SegmentCache) -> None:
    small, big = TABLES["no rows"], TABLES["numbers"]
    data, out = _encode({"small": small, "big": big}, segments)
    assert out is not None
    [name] = out.names
    assert out.size == _arrow.stream_size(big) and segment_names(data) == [name]
    codes: list[int] = []

    def hook(code: int, ext: bytes) -> None:
        codes.append(code)

    msgpack.unpackb(data, ext_hook=hook)
    assert sorted(codes) == [ARROW_EXT, SHM_ARROW_EXT]
    out.release()


class _Exporter:
    """Only the Arrow PyCapsule stream interface (as polars, DuckDB, pandas export)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.table.__arrow_c_stream__(requested_schema)


@pytest.mark.parametrize("path", ["inline", "shm"])
@pytest.mark.parametrize("name", ["numbers", "strings and nulls", "no rows"])
def test_any_arrow_stream_exporter_arrives_as_a_table(
    name: str, path: str, segments: SegmentCache
) -> None:
    table = TABLES[name]
    back = _round_trip([_Exporter(table)], segments if path == "shm" else None)[0]
    assert type(back) is pa.Table and back.equals(table)


@pytest.mark.parametrize("path", ["inline", "shm"])
@pytest.mark.parametrize("name", ["numbers", "no rows"])
def test_a_one_shot_reader_is_read_once(name: str, path: str, segments: SegmentCache) -> None:
    table = TABLES[name]
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    back = _round_trip({"r": reader, "pad": b"x" * THRESHOLD}, segments if path == "shm" else None)
    assert back["r"].equals(table)


def _buffers(table: pa.Table) -> list[pa.Buffer]:
    out = []
    for column in table.columns:
        for chunk in column.chunks:
            out.extend(b for b in chunk.buffers() if b is not None and b.size)
    return out


def test_an_inline_table_views_the_received_bytes() -> None:
    table = TABLES["strings and nulls"]
    stream = _arrow.to_bytes(table)
    start = pa.py_buffer(stream).address
    back = _arrow.read(stream)  # what code 4's hook does with the extension's bytes
    assert back.equals(table)
    for buffer in _buffers(back):
        assert start <= buffer.address and buffer.address + buffer.size <= start + len(stream)
        assert not buffer.is_mutable
    # And through decode: each buffer's root is one read-only buffer of the stream's length.
    back = decode(encode(table, what="t", limit=LIMIT), what="t")
    roots = set()
    for buffer in _buffers(back):
        root = buffer
        while root.parent is not None:
            root = root.parent
        roots.add((root.address, root.size, root.is_mutable))
        assert root.address <= buffer.address < root.address + root.size
    assert roots == {(next(iter(roots))[0], len(stream), False)}


def test_a_table_in_shared_memory_views_the_segment_in_place(segments: SegmentCache) -> None:
    table = TABLES["strings and nulls"]
    data, out = _encode(table, segments)
    assert out is not None
    [name] = out.names
    told: list[str] = []
    back = decode(data, what="t", unmapped=told.append)
    low, high = _mapping_of(name)
    # In the mapping of the segment: read in place, and 8-byte aligned, as Arrow needs.
    assert all(low <= b.address and b.address + b.size <= high for b in _buffers(back))
    assert all(b.address % 8 == 0 for b in _buffers(back))
    assert low % 4096 == 0  # the stream starts the segment: page-aligned
    column = back.column("s")
    del back
    gc.collect()
    assert told == []  # a column still views it
    del column
    gc.collect()
    assert told == [name]
    out.release()


def _mapping_of(name: str) -> tuple[int, int]:
    """The address range this process maps ``name`` at (from /proc/self/maps)."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == f"{_shm.SHM_DIR}/{name}":
                low, high = (int(x, 16) for x in fields[0].split("-"))
                return low, high
    raise AssertionError(f"{name} is not mapped here")


class _FullShm(SegmentCache):
    def put_with(self, size: int, fill: Any) -> str:
        raise OSError(28, "No space left on device")


def test_a_full_dev_shm_sends_tables_inline() -> None:
    out = Outbound(_FullShm("snakepit-test-"), threshold=1024)
    table = TABLES["numbers"]
    data = encode({"t": table}, what="t", limit=LIMIT, shm=out)
    assert out.names == [] and out.size == 0
    assert decode(data, what="t")["t"].equals(table)


@pytest.mark.parametrize("path", ["inline", "shm"])
def test_the_stream_counts_against_the_limit(path: str, segments: SegmentCache) -> None:
    table = TABLES["numbers"]
    out = None if path == "inline" else Outbound(segments, THRESHOLD)
    with pytest.raises(sp.PayloadTooLarge):
        encode(table, what="t", limit=_arrow.stream_size(table) - 1, shm=out)
    assert segments.out_names() == []


# --- refused ------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["inline", "shm"])
def test_a_chunked_array_is_refused_with_what_to_send(path: str, segments: SegmentCache) -> None:
    with pytest.raises(sp.SerializationError) as info:
        _round_trip({"col": [TABLES["numbers"].column("i")]}, segments if path == "shm" else None)
    assert "at ['col'][0]: an object of type 'ChunkedArray'" in str(info.value)
    assert "pa.table({'column': value})" in str(info.value)
    assert segments.out_names() == []


@pytest.mark.parametrize("path", ["inline", "shm"])
def test_receivers_without_arrow_are_sent_no_table(path: str, segments: SegmentCache) -> None:
    # Large buffers beside it, before it: the shared-memory pass meets the table too.
    value = {"big": np.zeros(THRESHOLD), "t": [TABLES["numbers"]]}
    with pytest.raises(sp.SerializationError) as info:
        _encode(value, segments if path == "shm" else None, arrow=False)
    text = str(info.value)
    assert text.startswith("cannot encode the value: at ['t'][0]: an Arrow table"), text
    assert "no 'arrow' capability" in text and "snakepit_trio[arrow]" in text
    assert segments.out_names() == []  # the array's segment is not lent out


def _hidden_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a process where pyarrow is not installed: importing it fails."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.ipc", None)


@pytest.mark.parametrize("path", ["inline", "shm"])
def test_a_table_arriving_where_pyarrow_is_missing_says_what_to_install(
    path: str, segments: SegmentCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, out = _encode({"t": TABLES["numbers"]}, segments if path == "shm" else None)
    _hidden_pyarrow(monkeypatch)
    told: list[str] = []
    with pytest.raises(sp.SerializationError) as info:
        decode(data, what="arguments of 'f'", unmapped=told.append)
    text = str(info.value)
    assert text.startswith("cannot decode arguments of 'f': an Arrow table arrived"), text
    assert "install snakepit_trio[arrow] (pyarrow>=15)" in text
    # A segment it never mapped is handed back at once.
    assert told == ([] if out is None else out.names)
    if out is not None:
        out.release()


def test_sending_where_pyarrow_is_missing_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _hidden_pyarrow(monkeypatch)
    with pytest.raises(sp.SerializationError) as info:
        encode({"df": _Exporter(TABLES["numbers"])}, what="the value", limit=LIMIT)
    assert "at ['df']: an Arrow value of type '_Exporter' needs pyarrow" in str(info.value)
    assert "snakepit_trio[arrow]" in str(info.value)


# --- malformed ----------------------------------------------------------------------------
def _packed(code: int, ext: bytes) -> bytes:
    data: bytes = msgpack.packb({"t": msgpack.ExtType(code, ext)}, use_bin_type=True)
    return data


GOOD_STREAM = _arrow.to_bytes(TABLES["strings and nulls"])
MALFORMED = {
    "empty": b"",
    "not a stream": b"certainly not Arrow",
    "truncated": GOOD_STREAM[: len(GOOD_STREAM) // 2],
    "schema only, cut": GOOD_STREAM[:40],
    "corrupt metadata": GOOD_STREAM[:8] + bytes(64) + GOOD_STREAM[72:],
}


@pytest.mark.parametrize("stream", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_inline_stream_is_a_serialization_error(stream: bytes) -> None:
    with pytest.raises(sp.SerializationError, match="an Arrow IPC stream that does not parse"):
        decode(_packed(ARROW_EXT, stream), what="the value")


@pytest.mark.parametrize("stream", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_stream_in_a_segment_is_refused_and_handed_back(
    stream: bytes, segments: SegmentCache
) -> None:
    name = segments.put(memoryview(stream + b"\0"))  # never empty: an empty file maps nothing
    told: list[str] = []
    with pytest.raises(sp.SerializationError, match="cannot decode the value: "):
        decode(
            _packed(SHM_ARROW_EXT, msgpack.packb([name, len(stream)])),
            what="the value",
            unmapped=told.append,
        )
    gc.collect()
    assert told == [name]


@pytest.mark.parametrize(
    "header",
    [[], ["snakepit-nothing-here", 10], ["/etc/passwd", 10], [1, 2], "no list"],
    ids=["empty", "no such segment", "not a segment name", "wrong types", "not a list"],
)
def test_a_malformed_segment_header_is_a_serialization_error(header: Any) -> None:
    with pytest.raises(sp.SerializationError, match="cannot decode the value: "):
        decode(_packed(SHM_ARROW_EXT, msgpack.packb(header)), what="the value")


# --- imports ------------------------------------------------------------------------------
def test_pyarrow_is_imported_only_when_an_arrow_value_is_met() -> None:
    code = (
        "import sys\n"
        "import numpy as np\n"
        "import snakepit_trio, snakepit_trio.worker\n"
        "from snakepit_trio._shared import _arrow\n"
        "from snakepit_trio._shared._codec import decode, encode\n"
        "from snakepit_trio.worker._connection import describe_map\n"
        "value = {'a': np.arange(3), 'b': b'x', 'c': [1.5]}\n"
        "decode(encode(value, what='v', limit=1 << 20), what='v')\n"
        "assert _arrow.available()\n"
        "print('pyarrow' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False"], out.stderr


def test_pyarrow_found_or_not_without_importing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _arrow.available()

    class _Refuse:
        def find_spec(self, name: str, *args: object) -> None:
            if name == "pyarrow":
                raise ModuleNotFoundError("No module named 'pyarrow' (hidden)")

    monkeypatch.delitem(sys.modules, "pyarrow")  # as in a process that never imported it
    monkeypatch.setattr(sys, "meta_path", [_Refuse(), *sys.meta_path])
    assert not _arrow.available()


def test_a_stream_longer_than_measured_never_outgrows_its_segment(
    segments: SegmentCache,
) -> None:
    table = TABLES["numbers"]
    short = _arrow.stream_size(table) - 8
    with pytest.raises(ValueError, match=f"longer than the {short} bytes measured"):
        segments.put_with(short, lambda fd: _arrow.write(fd, table, short))
    gc.collect()  # pyarrow's file object goes: it writes nothing more
    assert segments.out_names() == [] and segments.free_names() == []
    assert not [n for n in os.listdir(_shm.SHM_DIR) if n.startswith(segments.prefix)]
