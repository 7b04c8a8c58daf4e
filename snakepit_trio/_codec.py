"""Payload encoding: msgpack, with size limits and typed errors.

Arguments and results cross the wire as msgpack bytes. No pickle: a value msgpack cannot
represent is refused with SerializationError naming its type. Shared by host and worker.

numpy arrays travel as a msgpack extension (code 1): a small msgpack header
``[dtype.str, shape]`` (length-prefixed), then the array's bytes in C order. They arrive as
read-only arrays that view the received message (no copy on decode; ``.copy()`` one to
modify it). Object arrays are refused. numpy is imported only when an array is seen.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from ._core._types import is_ndarray
from ._errors import PayloadTooLarge, SerializationError

DEFAULT_MAX_PAYLOAD: int = 64 * 1024 * 1024


def _describe_unencodable(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, OverflowError):
        return f"an integer is out of msgpack's 64-bit range ({text})"
    return text


NDARRAY_EXT = 1
_HEADER = struct.Struct("<I")


def _default(obj: Any) -> Any:
    if is_ndarray(obj):
        import numpy as np

        if obj.dtype.hasobject:
            raise TypeError("numpy arrays of Python objects cannot travel (dtype=object)")
        array = np.ascontiguousarray(obj)
        header = msgpack.packb([array.dtype.str, list(obj.shape)])  # 0-d stays 0-d
        return msgpack.ExtType(
            NDARRAY_EXT, b"".join((_HEADER.pack(len(header)), header, array.data))
        )
    if isinstance(obj, int):  # msgpack hands us the ints it cannot hold
        raise OverflowError(f"{obj} does not fit in 64 bits")
    raise TypeError(f"can not serialize {type(obj).__name__!r} object")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == NDARRAY_EXT:
        import numpy as np

        (size,) = _HEADER.unpack_from(data)
        dtype, shape = msgpack.unpackb(data[_HEADER.size : _HEADER.size + size])
        return np.frombuffer(data, dtype=np.dtype(dtype), offset=_HEADER.size + size).reshape(shape)
    return msgpack.ExtType(code, data)


def encode(value: Any, *, what: str, limit: int) -> bytes:
    """Encode ``value`` to msgpack bytes.

    Raises:
        SerializationError: the value holds something msgpack cannot encode.
        PayloadTooLarge: the encoding is longer than ``limit`` bytes.
    """
    try:
        data: bytes = msgpack.packb(value, use_bin_type=True, default=_default)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(
            f"cannot encode {what}: {_describe_unencodable(exc)}; "
            "pass only None, bool, int, float, str, bytes, list, tuple, dict and numpy arrays"
        ) from exc
    if len(data) > limit:
        raise PayloadTooLarge(what, len(data), limit)
    return data


def decode(data: bytes, *, what: str) -> Any:
    """Decode msgpack bytes produced by :func:`encode`.

    Raises:
        SerializationError: the bytes are not a single valid msgpack value.
    """
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook)
    except Exception as exc:
        raise SerializationError(f"cannot decode {what}: {exc}") from exc
