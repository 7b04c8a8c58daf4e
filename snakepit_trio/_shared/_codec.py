"""Payload encoding: msgpack, with size limits and typed errors.

Arguments and results cross the wire as msgpack bytes. No pickle: a value msgpack cannot
represent is refused with SerializationError naming its type. Shared by host and worker.

numpy arrays travel as a msgpack extension (code 1): a small msgpack header
``[dtype.str, shape]`` (length-prefixed), then the array's bytes in C order. They arrive as
read-only arrays that view the received message (no copy on decode; ``.copy()`` one to
modify it). Object arrays and structured arrays are refused. numpy's bool, integer and
floating scalars travel as plain bool, int and float. numpy is imported only when an array
is seen. A DLPack tensor in host memory travels as the numpy array viewing it (``_dlpack.py``).

Arrow tables (anything exporting ``__arrow_c_stream__``) travel as an Arrow IPC stream: inline
(code 4: the stream's bytes, nothing else), or in a segment (code 5); both arrive as a
``pyarrow.Table`` viewing the received bytes (``_arrow.py``).

datetime, date, timedelta, Decimal and UUID travel as msgpack's timestamp (-1) and codes 6
to 10 (``_values.py``); a user's own classes as codes 32 to 127, once registered with
``register_type`` on both sides (``_user_types.py``). An extension code nobody here knows is
refused on decode, never handed on as raw bytes.

Every failure to encode is a SerializationError (or PayloadTooLarge) naming where in the
value the problem is (``_unencodable.py``); no TypeError, RecursionError or BufferError of
msgpack's, or of a container's own ``__iter__``, reaches the caller.
"""

from __future__ import annotations

import contextlib
import functools
import struct
import weakref
from collections.abc import Callable
from typing import Any

import msgpack

from .._core._types import is_ndarray, numpy_kind
from .._errors import PayloadTooLarge, SerializationError
from . import _arrow, _dlpack, _shm, _user_types, _values
from ._segments import SegmentCache
from ._unencodable import MAX_DEPTH, Refused, array_problem, explain

DEFAULT_MAX_PAYLOAD: int = 64 * 1024 * 1024


NDARRAY_EXT = 1  # inline array: header length, [dtype, shape], bytes
SHM_NDARRAY_EXT = 2  # [segment name, size, dtype, shape]
SHM_BYTES_EXT = 3  # [segment name, size]
ARROW_EXT = 4  # an Arrow IPC stream, inline: the stream's bytes
SHM_ARROW_EXT = 5  # an Arrow IPC stream in a segment: [segment name, size]
_HEADER = struct.Struct("<I")

# Codes 6 to 10: datetime, date, timedelta, Decimal, UUID (_values.py); an aware datetime is
# msgpack's own timestamp (-1). 32 to 127: users' types (_user_types.py). 4 and 5: Arrow.


def _bytes_of(array: Any) -> memoryview:
    """The buffer of a C-contiguous array."""
    if array.dtype.kind in "Mm":  # datetime64 and timedelta64 export no buffer of their own
        import numpy as np

        return memoryview(array.reshape(-1).view(np.uint8))
    data: memoryview = array.data
    return data


def _default(obj: Any) -> Any:
    entry = _user_types.BY_TYPE.get(type(obj))
    if entry is not None:  # a user's registered type (exactly its class)
        return msgpack.ExtType(entry.code, _user_payload(entry, obj))
    if is_ndarray(obj):
        import numpy as np

        problem = array_problem(obj)
        if problem is not None:
            raise TypeError(problem)
        array = np.ascontiguousarray(obj)
        header = msgpack.packb([array.dtype.str, list(obj.shape)])  # 0-d stays 0-d
        return msgpack.ExtType(
            NDARRAY_EXT, b"".join((_HEADER.pack(len(header)), header, _bytes_of(array)))
        )
    # -- Arrow tables (code 4; code 5 in _to_segment) --
    if _arrow.is_arrow(obj):
        return msgpack.ExtType(ARROW_EXT, _arrow.to_bytes(_arrow.table_of(obj)))
    # -- DLPack tensors in host memory: as numpy arrays --
    if _dlpack.is_dlpack(obj):
        return _default(_dlpack.as_ndarray(obj))
    kind = numpy_kind(obj)
    if kind == "b":
        return bool(obj)
    if kind in ("i", "u"):
        return int(obj)
    if kind == "f":
        return float(obj)  # float32 and float16 widen exactly; longdouble rounds
    if isinstance(obj, int):  # msgpack hands us the ints it cannot hold
        raise OverflowError(f"{obj} does not fit in 64 bits")
    everyday = _values.to_msgpack(obj)
    if everyday is not None:  # datetime, date, timedelta, Decimal, UUID
        return everyday
    raise TypeError(f"can not serialize {type(obj).__name__!r} object")


def _user_payload(entry: _user_types.Entry, obj: Any) -> bytes:
    """The payload of a registered type's extension: its encode's value, encoded."""
    shown = _user_types.shown_name(entry.cls)
    name = f"{shown!r} (code {entry.code})"
    too_deep = (
        f"the encode registered for {name} returned registered types nested too deep (does "
        "an encode return an object whose encoding leads back to it?)"
    )
    try:
        value = entry.encode(obj)
    except MemoryError:
        raise
    except RecursionError as exc:
        raise Refused(obj, too_deep, too_deep=True) from exc
    except Exception as exc:
        why = f"the encode registered for {name} raised {type(exc).__name__}: {exc}"
        raise Refused(obj, why) from exc
    if type(value) is type(obj):
        why = (
            f"the encode registered for {name} returned a {shown!r} again; return what it "
            "is made of (a dict or list of plain values)"
        )
        raise Refused(obj, why)
    try:
        # Inline, always: large buffers inside it do not go to shared memory.
        data: bytes = msgpack.packb(value, use_bin_type=True, default=_default)
    except MemoryError:
        raise
    except RecursionError as exc:
        raise Refused(obj, too_deep, too_deep=True) from exc
    except Exception as exc:
        if isinstance(exc, Refused) and exc.too_deep:  # said once, not once per level
            raise Refused(obj, too_deep, too_deep=True) from None
        why = f"the encode registered for {name} returned what cannot travel: "
        raise Refused(obj, why + _clipped(explain(value, exc))) from exc
    return data


def _clipped(text: str, limit: int = 600) -> str:
    """``text``, its middle cut when long (registered types nested in one another)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit // 3]} ... {text[-(limit - limit // 3) :]}"


def _ext_hook(code: int, data: bytes) -> Any:
    if code == NDARRAY_EXT:
        import numpy as np

        (size,) = _HEADER.unpack_from(data)
        dtype, shape = msgpack.unpackb(data[_HEADER.size : _HEADER.size + size])
        return np.frombuffer(data, dtype=np.dtype(dtype), offset=_HEADER.size + size).reshape(shape)
    # -- Arrow tables --
    if code == ARROW_EXT:
        return _arrow.read(data)
    everyday = _values.DECODERS.get(code)
    if everyday is not None:  # datetime, date, timedelta, Decimal, UUID
        return everyday(data)
    entry = _user_types.BY_CODE.get(code)
    if entry is not None:  # a user's registered type
        return _user_value(entry, data)
    raise _values.Malformed(_values.unknown_code(code))


def _user_value(entry: _user_types.Entry, data: bytes) -> Any:
    """A registered type's object, rebuilt by its decode from the extension's payload."""
    name = f"{_user_types.shown_name(entry.cls)!r} (extension {entry.code})"
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
            ext_hook=_ext_hook,
            timestamp=3,
            object_pairs_hook=_pairs,
        )
    except Exception as exc:
        raise _values.Malformed(f"the payload of a {name} does not decode: {exc}") from exc
    try:
        return entry.decode(value)
    except Exception as exc:
        why = f"the decode registered for {name} raised {type(exc).__name__}: {exc}"
        raise _values.Malformed(why) from exc


class Outbound:
    """Where one payload's large buffers go: shared-memory segments (see _segments.py)."""

    __slots__ = ("cache", "names", "size", "threshold")  # one per call: no __dict__

    def __init__(self, cache: SegmentCache, threshold: int) -> None:
        self.cache = cache
        self.threshold = threshold
        self.names: list[str] = []
        self.size = 0

    def sent(self, holder: str) -> None:
        """The payload went to ``holder``, which may map its segments until it says not."""
        if self.names:
            self.cache.sent(self.names, holder)

    def release(self) -> None:
        """This side is done with the payload (its call is over, or it was never sent)."""
        if self.names:
            self.cache.done(self.names)
            self.names = []


class _Lifted:
    """A buffer at or above the threshold, to be sent through shared memory (``size``: the
    length of an Arrow table's IPC stream)."""

    __slots__ = ("size", "value")

    def __init__(self, value: Any, size: int = 0) -> None:
        self.value = value
        self.size = size


class _Big(Exception):
    """The probe met an array at or above the threshold."""


def _lift_leaf(value: Any, threshold: int, arrow: bool) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _Lifted(value) if memoryview(value).nbytes >= threshold else value
    if is_ndarray(value):
        big = value.nbytes >= threshold and array_problem(value) is None
        return _Lifted(value) if big else value
    # -- Arrow tables: read once here (a stream exporter may be a one-shot reader) --
    if _arrow.is_arrow(value):
        if not arrow:
            raise TypeError(_arrow.NO_ARROW)
        table = _arrow.table_of(value)
        size = _arrow.stream_size(table)
        return _Lifted(table, size) if size >= threshold else table
    # -- DLPack tensors in host memory: as numpy arrays --
    if _dlpack.is_dlpack(value):
        return _lift_leaf(_dlpack.as_ndarray(value), threshold, arrow)
    return value


def _lift(value: Any, threshold: int, arrow: bool = True) -> Any:
    """A copy of ``value``'s lists and dicts with its large buffers wrapped in _Lifted (and
    Arrow stream exporters read as tables; ``arrow`` False refuses them).

    Iterative, so that deep nesting (up to msgpack's own limit) never meets Python's
    recursion limit; deeper nesting, or a container that holds itself, raises ValueError.
    """
    top: list[Any] = []
    # One entry per container being copied: its (key, item) pairs and where they go.
    stack: list[tuple[Any, Any]] = [(iter([(None, value)]), top)]
    while stack:
        pairs, target = stack[-1]
        for key, item in pairs:
            children: Any = None
            if isinstance(item, dict):
                copy: Any = {}
                children = iter(item.items())
            elif isinstance(item, (list, tuple)):
                copy = []
                children = ((None, v) for v in item)
            else:
                copy = _lift_leaf(item, threshold, arrow)
            if type(target) is list:
                target.append(copy)
            else:
                target[key] = copy
            if children is not None:
                if len(stack) > MAX_DEPTH:
                    raise ValueError("recursion limit exceeded")
                stack.append((children, copy))
                break
        else:
            stack.pop()
    return top[0]


def _to_segment(out: Outbound, obj: Any) -> Any:
    if not isinstance(obj, _Lifted):
        return _default(obj)
    value = obj.value
    if _arrow.is_arrow(value):
        return _arrow_to_segment(out, value, obj.size)
    if is_ndarray(value):
        import numpy as np

        array = np.ascontiguousarray(value)
        meta = [value.dtype.str, list(value.shape)]
        code, view = SHM_NDARRAY_EXT, _bytes_of(array).cast("B")
    else:
        meta, code, view = [], SHM_BYTES_EXT, memoryview(value).cast("B")
    try:
        name = out.cache.put(view)
    except OSError:
        # /dev/shm is full or missing (a container's default is 64 MiB): send it inline.
        return _default(array) if code == SHM_NDARRAY_EXT else bytes(view)
    out.names.append(name)
    out.size += view.nbytes
    return msgpack.ExtType(code, msgpack.packb([name, view.nbytes, *meta]))


def _arrow_to_segment(out: Outbound, table: Any, size: int) -> Any:
    """Code 5: the table's IPC stream written straight into a segment (see _arrow.py)."""
    try:
        name = out.cache.put_with(size, lambda fd: _arrow.write(fd, table, size))
    except OSError:  # /dev/shm is full or missing: send it inline
        return msgpack.ExtType(ARROW_EXT, _arrow.to_bytes(table))
    out.names.append(name)
    out.size += size
    return msgpack.ExtType(SHM_ARROW_EXT, msgpack.packb([name, size]))


_SCANNED_ITEMS = 64  # how much of a payload _holds_big_buffer looks at before it gives up


def _holds_big_buffer(value: Any, threshold: int) -> bool:
    """Whether one of the first few items of ``value`` (itself, the items of its lists,
    tuples and dicts) is bytes, a bytearray or a memoryview of ``threshold`` bytes or more.

    False may be wrong for a large payload (the trial encoding decides then); True is not.
    """
    stack, seen = [value], 0
    while stack and seen < _SCANNED_ITEMS:
        item = stack.pop()
        seen += 1
        kind = type(item)
        if kind is bytes or kind is bytearray:
            if len(item) >= threshold:
                return True
        elif kind is memoryview:
            if item.nbytes >= threshold:
                return True
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
    return False


@functools.cache  # one per threshold, not one per call
def _probe(threshold: int) -> Any:
    def default(obj: Any) -> Any:
        if is_ndarray(obj) and obj.nbytes >= threshold:
            raise _Big
        # -- Arrow tables: a stream exporter that is not a pyarrow table may be a one-shot
        # reader, so it is read once, by _lift --
        if _arrow.is_arrow(obj) and (
            not _arrow.is_table(obj) or _arrow.stream_size(obj) >= threshold
        ):
            raise _Big
        # -- DLPack tensors in host memory: as numpy arrays --
        if _dlpack.is_dlpack(obj):
            array = _dlpack.as_ndarray(obj)
            if array.nbytes >= threshold:
                raise _Big
            return _default(array)
        return _default(obj)

    return default


@functools.cache  # one per default function
def _refusing_arrow(default: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def refusing(obj: Any) -> Any:
        if _arrow.is_arrow(obj):
            raise TypeError(_arrow.NO_ARROW)
        return default(obj)

    return refusing


def encode(
    value: Any, *, what: str, limit: int, shm: Outbound | None = None, arrow: bool = True
) -> bytes:
    """Encode ``value`` to msgpack bytes.

    With ``shm``, buffers (bytes, bytearray, memoryview, numpy arrays, Arrow tables' IPC
    streams) of at least ``shm.threshold`` bytes go to shared-memory segments named in
    ``shm.names``; the caller releases them. Payloads below the threshold take the plain
    path unchanged. ``arrow`` False: the receiver cannot read Arrow tables, so one is refused.

    Raises:
        SerializationError: the value holds something msgpack cannot encode (the message
            says where and what to send instead), or iterating one of its containers
            raised.
        PayloadTooLarge: the encoding (segments included) is longer than ``limit`` bytes.
    """
    try:
        try:
            if shm is not None and _holds_big_buffer(value, shm.threshold):
                raise _Big  # no trial encoding: it would copy that buffer for nothing
            default = _default if shm is None else _probe(shm.threshold)
            if not arrow:
                default = _refusing_arrow(default)
            data: bytes = msgpack.packb(value, use_bin_type=True, default=default)
            big = shm is not None and len(data) >= shm.threshold
        except _Big:
            big = True
        if big:
            assert shm is not None
            lifted = _lift(value, shm.threshold, arrow)
            data = msgpack.packb(lifted, use_bin_type=True, default=lambda o: _to_segment(shm, o))
    except MemoryError:
        if shm is not None:
            shm.release()
        raise
    except Exception as exc:  # msgpack's, a container's own __iter__ or __len__: all of them
        if shm is not None:
            shm.release()
        raise SerializationError(f"cannot encode {what}: {explain(value, exc, arrow)}") from exc
    size = len(data) + (shm.size if shm is not None else 0)
    if size > limit:
        if shm is not None:
            shm.release()
        raise PayloadTooLarge(what, size, limit)
    return data


_SEGMENT_MARK = b"snakepit-"  # every segment name starts so (see _shm.py)

Unmapped = Callable[[str], None]  # told each segment name no view of which is left here


SEGMENT_CODES = frozenset({SHM_NDARRAY_EXT, SHM_BYTES_EXT, SHM_ARROW_EXT})


class _Receipt:
    """The segments one payload names, as it is decoded: each one this process took in
    (copied, or viewed until its last view dies) is ``unmapped`` once nothing maps it; if
    decoding fails, the ones it never reached are handed back at once (``abandon``)."""

    __slots__ = ("taken", "unmapped")

    def __init__(self, unmapped: Unmapped | None) -> None:
        self.unmapped = unmapped
        self.taken: set[str] = set()

    def hook(self, code: int, ext: bytes) -> Any:
        if code in SEGMENT_CODES:
            return _from_segment(code, ext, self)
        return _ext_hook(code, ext)

    def took(self, name: str) -> None:
        """This process took ``name`` in: ``unmapped`` hears of it when it lets go."""
        if self.unmapped is not None:  # nobody to tell: nothing to remember
            self.taken.add(name)

    def abandon(self, data: bytes) -> None:
        """Decoding failed: the segments not taken in are free to their maker now."""
        if self.unmapped is not None:
            for name in segment_names(data):
                if name not in self.taken:
                    self.unmapped(name)


def _from_segment(code: int, data: bytes, receipt: _Receipt) -> Any:
    name, size, *meta = msgpack.unpackb(data)
    unmapped = receipt.unmapped
    # -- Arrow tables: a process without pyarrow maps nothing (the name is handed back) --
    if code == SHM_ARROW_EXT:
        _arrow.pyarrow("an Arrow table arrived: reading it")
    if code == SHM_BYTES_EXT:
        value = _shm.read(name, size)
        receipt.took(name)
        if unmapped is not None:
            unmapped(name)
        return value
    mapping = _shm.attach(name, size)
    if unmapped is not None:
        # When the last array (or Arrow buffer) viewing it is gone, its maker may reuse it.
        weakref.finalize(mapping, unmapped, name)
    receipt.took(name)
    # -- Arrow tables --
    if code == SHM_ARROW_EXT:
        try:
            return _arrow.read(mapping)
        except ValueError:
            del mapping  # this frame, in the error's traceback, would keep it mapped
            raise
    import numpy as np

    dtype, shape = meta
    return np.frombuffer(mapping, dtype=np.dtype(dtype)).reshape(shape)


_plain_hook = _Receipt(None).hook


def _hashable(key: Any) -> Any:
    # msgpack sends a tuple as an array, which decodes to a list: make map keys tuples again.
    if type(key) is list:
        return tuple(_hashable(k) for k in key)
    return key


def _pairs(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    return {_hashable(key): value for key, value in pairs}


def decode(data: bytes, *, what: str, unmapped: Unmapped | None = None) -> Any:
    """Decode msgpack bytes produced by :func:`encode`.

    Shared-memory buffers are mapped; ``unmapped(name)`` is called (from whichever thread
    drops the last view) once nothing here maps a segment any more, so its maker can reuse it.
    If decoding fails, each segment the payload names is still reported: at once if it was
    never mapped, else when the views made before the failure are gone.
    A dict key that was a tuple arrives as a tuple (a list value arrives as a list). An aware
    datetime arrives in UTC.

    Raises:
        SerializationError: the bytes are not a single valid msgpack value, an extension's
            payload is malformed (the message names its type and what is wrong), its code
            is unknown here (a user's type not registered in this process), or a registered
            type's decode raised.
    """

    # Only a payload that names a segment has anything to report (its name is in the bytes).
    receipt = None if unmapped is None or _SEGMENT_MARK not in data else _Receipt(unmapped)
    hook = _plain_hook if receipt is None else receipt.hook
    try:
        try:
            return msgpack.unpackb(
                data, raw=False, strict_map_key=False, ext_hook=hook, timestamp=3
            )
        except TypeError:  # a map key that decoded to a list: a tuple key, sent as an array
            if segment_names(data):
                # Decoding again would map its segments twice, and the views the first pass
                # made would report them unmapped while the second pass's still use them.
                raise
            return msgpack.unpackb(
                data,
                raw=False,
                strict_map_key=False,
                ext_hook=hook,
                timestamp=3,
                object_pairs_hook=_pairs,
            )
    except Exception as exc:
        if receipt is not None:
            receipt.abandon(data)
        why = _values.timestamp_problem(exc) or str(exc)
        if isinstance(exc, TypeError) and "unhashable type: 'list'" in why:
            why += " (a tuple as a dict key cannot travel with shared-memory buffers)"
        elif isinstance(exc, TypeError) and "unhashable" in why:
            why += " (a dict key must be hashable where it arrives: a registered type's decode "
            why += "returned an object that is not)"
        raise SerializationError(f"cannot decode {what}: {why}") from exc


def segment_names(data: bytes) -> list[str]:
    """The segments a payload names, without mapping them (a frame that is dropped)."""
    if _SEGMENT_MARK not in data:
        return []
    names: list[str] = []

    def hook(code: int, ext: bytes) -> Any:
        if code in SEGMENT_CODES:
            names.append(msgpack.unpackb(ext)[0])
        return None

    with contextlib.suppress(Exception):
        msgpack.unpackb(
            data, raw=False, strict_map_key=False, ext_hook=hook, object_pairs_hook=_pairs
        )
    return [name for name in names if isinstance(name, str)]
