"""Payload encoding: msgpack, with size limits and typed errors.

Arguments and results cross the wire as msgpack bytes. No pickle: a value msgpack cannot
represent is refused with SerializationError naming its type. Shared by host and worker.

numpy arrays travel as a msgpack extension (code 1): a small msgpack header
``[dtype.str, shape]`` (length-prefixed), then the array's bytes in C order. They arrive as
read-only arrays that view the received message (no copy on decode; ``.copy()`` one to
modify it). Object arrays and structured arrays are refused. numpy's bool, integer and
floating scalars travel as plain bool, int and float. numpy is imported only when an array
is seen.

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
from . import _shm, _user_types, _values
from ._segments import SegmentCache
from ._unencodable import MAX_DEPTH, Refused, array_problem, explain

DEFAULT_MAX_PAYLOAD: int = 64 * 1024 * 1024


NDARRAY_EXT = 1  # inline array: header length, [dtype, shape], bytes
SHM_NDARRAY_EXT = 2  # [segment name, size, dtype, shape]
SHM_BYTES_EXT = 3  # [segment name, size]
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
    """A buffer at or above the threshold, to be sent through shared memory."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Big(Exception):
    """The probe met an array at or above the threshold."""


def _lift_leaf(value: Any, threshold: int) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _Lifted(value) if memoryview(value).nbytes >= threshold else value
    if is_ndarray(value):
        big = value.nbytes >= threshold and array_problem(value) is None
        return _Lifted(value) if big else value
    return value


def _lift(value: Any, threshold: int) -> Any:
    """A copy of ``value``'s lists and dicts with its large buffers wrapped in _Lifted.

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
                copy = _lift_leaf(item, threshold)
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


@functools.cache  # one per threshold, not one per call
def _probe(threshold: int) -> Any:
    def default(obj: Any) -> Any:
        if is_ndarray(obj) and obj.nbytes >= threshold:
            raise _Big
        return _default(obj)

    return default


def encode(value: Any, *, what: str, limit: int, shm: Outbound | None = None) -> bytes:
    """Encode ``value`` to msgpack bytes.

    With ``shm``, buffers (bytes, bytearray, memoryview, numpy arrays) of at least
    ``shm.threshold`` bytes go to shared-memory segments named in ``shm.names``; the caller
    releases them. Payloads below the threshold take the plain path unchanged.

    Raises:
        SerializationError: the value holds something msgpack cannot encode (the message
            says where and what to send instead), or iterating one of its containers
            raised.
        PayloadTooLarge: the encoding (segments included) is longer than ``limit`` bytes.
    """
    try:
        try:
            default = _default if shm is None else _probe(shm.threshold)
            data: bytes = msgpack.packb(value, use_bin_type=True, default=default)
            big = shm is not None and len(data) >= shm.threshold
        except _Big:
            big = True
        if big:
            assert shm is not None
            lifted = _lift(value, shm.threshold)
            data = msgpack.packb(lifted, use_bin_type=True, default=lambda o: _to_segment(shm, o))
    except MemoryError:
        if shm is not None:
            shm.release()
        raise
    except Exception as exc:  # msgpack's, a container's own __iter__ or __len__: all of them
        if shm is not None:
            shm.release()
        raise SerializationError(f"cannot encode {what}: {explain(value, exc)}") from exc
    size = len(data) + (shm.size if shm is not None else 0)
    if size > limit:
        if shm is not None:
            shm.release()
        raise PayloadTooLarge(what, size, limit)
    return data


_SEGMENT_MARK = b"snakepit-"  # every segment name starts so (see _shm.py)

Unmapped = Callable[[str], None]  # told each segment name no view of which is left here


def _from_segment(code: int, data: bytes, unmapped: Unmapped | None) -> Any:
    name, size, *meta = msgpack.unpackb(data)
    mapping = _shm.attach(name, size)
    if code == SHM_BYTES_EXT:
        with mapping:
            value = bytes(mapping)
        if unmapped is not None:
            unmapped(name)
        return value
    import numpy as np

    if unmapped is not None:
        # When the last array viewing it is gone, its maker may reuse the segment.
        weakref.finalize(mapping, unmapped, name)
    dtype, shape = meta
    return np.frombuffer(mapping, dtype=np.dtype(dtype)).reshape(shape)


@functools.lru_cache(maxsize=16)  # one per receiver, not one per decoded payload
def _hook_for(unmapped: Unmapped | None) -> Callable[[int, bytes], Any]:
    def hook(code: int, ext: bytes) -> Any:
        if code in (SHM_NDARRAY_EXT, SHM_BYTES_EXT):
            return _from_segment(code, ext, unmapped)
        return _ext_hook(code, ext)

    return hook


_plain_hook = _hook_for(None)


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
    A dict key that was a tuple arrives as a tuple (a list value arrives as a list). An aware
    datetime arrives in UTC.

    Raises:
        SerializationError: the bytes are not a single valid msgpack value, an extension's
            payload is malformed (the message names its type and what is wrong), its code
            is unknown here (a user's type not registered in this process), or a registered
            type's decode raised.
    """

    hook = _plain_hook if unmapped is None else _hook_for(unmapped)
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
        if code in (SHM_NDARRAY_EXT, SHM_BYTES_EXT):
            names.append(msgpack.unpackb(ext)[0])
        return None

    with contextlib.suppress(Exception):
        msgpack.unpackb(
            data, raw=False, strict_map_key=False, ext_hook=hook, object_pairs_hook=_pairs
        )
    return [name for name in names if isinstance(name, str)]
