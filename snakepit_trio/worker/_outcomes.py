"""The ERROR frames a call can end with, built so that building one never fails the call.

What a tool raises is reported whatever it is: a ``__str__`` that raises, a traceback that
cannot be formatted, text no UTF-8 can hold (msgpack would refuse it, failing the whole
batch it travels in). If even that goes wrong, ``unreportable_frame`` is a constant one.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import Any

from .._errors import PayloadTooLarge, SerializationError
from .._shared import _frames as w

log = logging.getLogger("snakepit_trio.worker")

Frame = list[Any]


def not_started_frame(call_id: int) -> Frame:
    """The answer to a CANCEL that withdrew a call before it started (see _claim.py)."""
    return w.error(
        call_id,
        "CancelledError",
        "call cancelled before it started",
        w.KIND_CANCELLED,
        detail={"started": False},
    )


def error_frame(call_id: int, error: BaseException) -> Frame:
    """The ERROR frame of a call that ended with ``error``."""
    if isinstance(error, asyncio.CancelledError):
        return w.error(call_id, "CancelledError", "call cancelled", w.KIND_CANCELLED)
    if isinstance(error, SerializationError):
        return w.error(call_id, "SerializationError", _wire(str(error)), w.KIND_SERIALIZATION)
    if isinstance(error, PayloadTooLarge):
        return w.error(
            call_id,
            "PayloadTooLarge",
            str(error),
            w.KIND_PAYLOAD_TOO_LARGE,
            detail={"size": error.size, "limit": error.limit},
        )
    return remote_error_frame(call_id, error)


def remote_error_frame(call_id: int, exc: BaseException) -> Frame:
    """ERROR kind "remote": what the tool raised, its message and traceback."""
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    try:
        tb = "".join(traceback.format_exception(exc))
    except BaseException as problem:  # e.g. a __notes__ that raises: keep type and message
        tb = f"<the traceback could not be formatted: {describe(problem)}>"
    return w.error(call_id, _wire(name), _wire(_message(exc, name)), w.KIND_REMOTE, _wire(tb))


def describe(exc: BaseException) -> str:
    """``Type: message`` for an error message, whatever ``str(exc)`` does."""
    name = type(exc).__name__
    message = _message(exc, name)
    return f"{name}: {message}" if message else name


def _message(exc: BaseException, name: str) -> str:
    try:
        return str(exc)
    except BaseException:  # a broken __str__, whatever it raises, must not lose the error
        return f"<unprintable {name}>"


def _wire(text: str) -> str:
    """``text`` as msgpack can send it: a lone surrogate (no UTF-8 holds one) escaped."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


UNREPORTABLE = (
    "the tool's outcome could not be reported: building its frame failed (see the worker's log)"
)


def unreportable_frame(call_id: int, exc: BaseException) -> Frame:
    """The ERROR frame sent when building a call's own final frame failed."""
    try:
        log.error("call %d: its final frame could not be built", call_id, exc_info=exc)
    except BaseException:  # nothing is left to report it with; the call must still end
        pass
    return w.error(call_id, "WorkerError", UNREPORTABLE, w.KIND_REMOTE)
