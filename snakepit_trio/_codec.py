"""Payload encoding: msgpack, with size limits and typed errors.

Arguments and results cross the wire as msgpack bytes. No pickle: a value msgpack cannot
represent is refused with SerializationError naming its type. Shared by host and worker.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ._errors import PayloadTooLarge, SerializationError

DEFAULT_MAX_PAYLOAD: int = 64 * 1024 * 1024


def _describe_unencodable(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, OverflowError):
        return f"an integer is out of msgpack's 64-bit range ({text})"
    return text


def encode(value: Any, *, what: str, limit: int) -> bytes:
    """Encode ``value`` to msgpack bytes.

    Raises:
        SerializationError: the value holds something msgpack cannot encode.
        PayloadTooLarge: the encoding is longer than ``limit`` bytes.
    """
    try:
        data: bytes = msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(
            f"cannot encode {what}: {_describe_unencodable(exc)}; "
            "pass only None, bool, int, float, str, bytes, list, tuple and dict values"
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
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:
        raise SerializationError(f"cannot decode {what}: {exc}") from exc
