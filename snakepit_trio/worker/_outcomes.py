"""The ERROR frames a call can end with, built so that building one never fails the call.

What a tool raises is reported whatever it is: a ``__str__`` that raises, a traceback that
cannot be formatted, text no UTF-8 can hold (msgpack would refuse it, failing the whole
batch it travels in), a message of megabytes (a frame over the host's message limit would
cost the worker its connection, and every call on it: texts are cut, with a marker). If
even that goes wrong, ``unreportable_frame`` is a constant one.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from numbers import Real
from typing import Any

from .._errors import PayloadTooLarge, SerializationError
from .._shared import _frames as w

log = logging.getLogger("snakepit_trio.worker")

Frame = list[Any]

# Longest texts an ERROR frame carries, in characters (at most 4 bytes each in UTF-8): at
# most 644 KiB in all, so that a batch (about 1 MiB, plus the frame that crosses it: see
# _frames.split_batches) stays within the 2 MiB every lane message may hold beyond the
# payload limit, whatever ``max_payload_bytes`` is.
MAX_MESSAGE = 1 << 15
MAX_TRACEBACK = 1 << 17
MAX_NAME = 1 << 10
MAX_PROGRESS = 1 << 12  # a progress message is a short note


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
        message = _wire(cut(str(error), MAX_MESSAGE))
        return w.error(call_id, "SerializationError", message, w.KIND_SERIALIZATION)
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
    return w.error(
        call_id,
        _wire(cut(name, MAX_NAME)),
        _wire(cut(_message(exc, name), MAX_MESSAGE)),
        w.KIND_REMOTE,
        _wire(cut(tb, MAX_TRACEBACK, middle=True)),
    )


def cut(text: str, limit: int, *, middle: bool = False) -> str:
    """``text``, or at most ``limit`` characters of it and a marker saying how much went.

    ``middle``: keep its start and its end (a traceback's innermost frames and the
    exception's line are at its end), else its start.
    """
    if len(text) <= limit:
        return text
    marker = f" [... {len(text) - limit} characters cut ...] "
    if not middle:
        return text[:limit] + marker
    half = limit // 2
    return text[:half] + marker + text[-half:]


def progress_values(
    done: object, total: object, message: object
) -> tuple[float, float | None, str | None]:
    """What a PROGRESS frame carries for ``ToolContext.progress(done, total, message)``.

    A value the host cannot read would break the protocol (the host replaces the worker)
    or the connection (msgpack refuses it): numbers become floats, a message text of at
    most MAX_PROGRESS characters.

    Raises:
        TypeError: ``done`` or ``total`` is not a real number (a string included), or too
            large for a float; the tool's call fails with it, not its worker.
    """
    number = _real("done", done)
    limit = None if total is None else _real("total", total)
    text = None if message is None else _wire(cut(str(message), MAX_PROGRESS))
    return number, limit, text


def _real(name: str, value: object) -> float:
    if not isinstance(value, Real):
        raise TypeError(f"progress {name} must be a number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise TypeError(f"progress {name} is too large for a float: {value!r:.40}") from None


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
