"""Arrow tables as payloads: an Arrow IPC stream, inline (code 4) or in a shared-memory
segment (code 5). Shared by host and worker.

How this works: a value whose type has ``__arrow_c_stream__`` (the Arrow PyCapsule stream
interface: pyarrow's Table and RecordBatch, and DataFrames of polars, pandas >= 2.2, DuckDB
results, ...) is read as a ``pyarrow.Table`` (its buffers stay the producer's: no copy) and
written as one IPC stream. The receiver reads the stream where it lies, in the msgpack
message or in the mapped segment: the table's buffers point into it (no copy on receipt), so
a segment is mapped until the last table, column or slice viewing it is gone.

Rules:

- Everything arrives as a ``pyarrow.Table`` (a RecordBatch too: the IPC stream does not say
  which it was, and a producer that is not Python sends plain streams); ``table.to_batches()``
  gives the batches back without copying. The table is checked for structure
  (``validate()``), not value by value (``validate(full=True)`` reads every offset).
- Segments start page-aligned and the IPC format pads every buffer to 8 bytes, so each column
  buffer is 8-byte aligned (what Arrow requires to read in place; pyarrow's writer has no
  option for 64) and pyarrow's reader, which copies nothing by default, takes them as is.
- pyarrow is imported only when an Arrow value is met, so the package and the worker runtime
  start without it; ``available()`` says whether it is installed without importing it (an
  import costs ~160 ms and ~40 MB per process).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from . import _shm

INSTALL = "install snakepit_trio[arrow] (pyarrow>=15)"
# Why an Arrow value is refused before it is sent (encode(..., arrow=False)).
NO_ARROW = (
    "an Arrow table, which these workers cannot read: their runtime names no 'arrow' "
    f"capability; {INSTALL} where they run, or send plain values "
    "(table.to_pydict(), or a numpy array per column)"
)
NOT_A_TABLE = (
    "an object of type {!r} exports an Arrow stream that is not a table ({}); send a "
    "pyarrow Table, e.g. pa.table({{'column': value}})"
)
_SMALL_WRITE = 64 << 10  # writes below this are gathered into one pwrite()


def is_arrow(value: Any) -> bool:
    """Whether ``value`` exports an Arrow stream (checked without importing pyarrow)."""
    return hasattr(type(value), "__arrow_c_stream__")


def available() -> bool:
    """Whether pyarrow is installed here (found, not imported)."""
    try:
        return importlib.util.find_spec("pyarrow") is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a broken sys.modules entry
        return False


class PyarrowMissing(ImportError):
    """An Arrow value met in a process where pyarrow cannot be imported."""


def pyarrow(what: str) -> Any:
    """The pyarrow module, to handle ``what``.

    Raises:
        PyarrowMissing: pyarrow cannot be imported here (the message says what to install).
    """
    try:
        import pyarrow as pa
        import pyarrow.ipc  # pa.ipc
    except ImportError as exc:
        raise PyarrowMissing(
            f"{what} needs pyarrow, which cannot be imported in this process "
            f"({type(exc).__name__}: {exc}); {INSTALL} where it runs"
        ) from exc
    return pa


def table_of(value: Any) -> Any:
    """``value`` as a pyarrow Table or RecordBatch (those as they are; any other stream
    exporter read into a Table, its buffers shared).

    Raises:
        PyarrowMissing: pyarrow cannot be imported here.
        TypeError: the stream is not one of record batches.
    """
    pa = pyarrow(f"an Arrow value of type {type(value).__name__!r}")
    if isinstance(value, pa.Table | pa.RecordBatch):
        return value
    try:
        return pa.RecordBatchReader.from_stream(value).read_all()
    except Exception as exc:  # whatever the producer's export or pyarrow's import raised
        why = f"{type(exc).__name__}: {exc}"
        raise TypeError(NOT_A_TABLE.format(type(value).__name__, why)) from exc


def is_table(value: Any) -> bool:
    """Whether ``value`` is a pyarrow Table or RecordBatch (read any number of times; other
    stream exporters may be one-shot readers)."""
    pa = pyarrow(f"an Arrow value of type {type(value).__name__!r}")
    return isinstance(value, pa.Table | pa.RecordBatch)


def _write(pa: Any, sink: Any, table: Any) -> None:
    with pa.ipc.new_stream(sink, table.schema) as writer:
        if isinstance(table, pa.RecordBatch):
            writer.write_batch(table)
        else:
            writer.write_table(table)


def stream_size(table: Any) -> int:
    """The length of ``table``'s IPC stream (measured, nothing written: cheap)."""
    pa = pyarrow("an Arrow table")
    sink = pa.MockOutputStream()
    _write(pa, sink, table)
    return int(sink.size())


def to_bytes(table: Any) -> bytes:
    """``table``'s IPC stream."""
    pa = pyarrow("an Arrow table")
    sink = pa.BufferOutputStream()
    _write(pa, sink, table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


class _SegmentFile:
    """What pyarrow writes the stream to: pwrite() into a segment from its start, so the
    table's buffers go to shared memory in one copy (as numpy arrays do). Writing through a
    fresh mapping instead would fault in, and zero, each page first (measured: 89 ms against
    52 ms for 100 MB into a new segment)."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.at = 0  # how much is written
        self.pending = bytearray()  # small writes (headers, padding), not yet written
        self.closed = False

    def write(self, data: Any) -> int:
        if self.closed:  # pyarrow's file object outlived a failed write (see write())
            raise ValueError("the segment is no longer open for this stream")
        view = memoryview(data).cast("B")
        n = view.nbytes
        if self.tell() + n > self.size:
            raise ValueError(f"the Arrow stream is longer than the {self.size} bytes measured")
        if n < _SMALL_WRITE:
            self.pending += view
            if len(self.pending) >= _SMALL_WRITE:
                self.flush()
            return n
        self.flush()
        _shm.write_all(self.fd, view, self.at)
        self.at += n
        return n

    def tell(self) -> int:
        return self.at + len(self.pending)

    def flush(self) -> None:
        if self.pending and not self.closed:
            _shm.write_all(self.fd, memoryview(self.pending), self.at)
            self.at += len(self.pending)
            self.pending.clear()

    def close(self) -> None:
        self.flush()
        self.closed = True

    def abandon(self) -> None:
        """No write reaches the descriptor any more (it is closed, or reused, after this)."""
        self.pending.clear()
        self.closed = True


def write(fd: int, table: Any, size: int) -> None:
    """Write ``table``'s IPC stream (``size`` bytes, as ``stream_size`` measured) to the
    segment open as ``fd``, from its start.

    Raises:
        ValueError: the stream is not ``size`` bytes long.
    """
    pa = pyarrow("an Arrow table")
    target = _SegmentFile(fd, size)
    try:
        sink = pa.PythonFile(target, mode="w")
        _write(pa, sink, table)
        sink.close()
        target.close()
    finally:
        # The descriptor is closed (and its number may be reused) next: nothing may reach
        # it later, whatever pyarrow's file object does when it is collected.
        target.abandon()
    if target.at != size:
        raise ValueError(f"the Arrow stream is {target.at} bytes, not the {size} measured")


def read(source: Any) -> Any:
    """The Table an IPC stream holds, its buffers views of ``source`` (bytes, a mapping).

    Raises:
        PyarrowMissing: pyarrow cannot be imported here.
        ValueError: ``source`` is not a valid IPC stream (the message has pyarrow's account).
    """
    pa = pyarrow("an Arrow table arrived: reading it")
    try:
        return _read(pa, source)
    except Exception as exc:  # untrusted bytes: whatever pyarrow raises (OSError included)
        problem = f"{type(exc).__name__}: {exc}"
    # Raised here, not from the handler: the failed reader's frames, which view ``source``,
    # go now (a segment is reused only once nothing maps it).
    raise ValueError(f"an Arrow IPC stream that does not parse ({problem})")


def _read(pa: Any, source: Any) -> Any:
    table = pa.ipc.open_stream(pa.py_buffer(source)).read_all()
    table.validate()
    return table
