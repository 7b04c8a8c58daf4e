"""Everyday Python values as msgpack extensions: datetimes, dates, timedeltas, Decimals, UUIDs.

How each travels (``proto/snakepit/v1/worker.proto``, "== Values ==", says the same for
workers in other languages):

- an aware datetime: msgpack's timestamp extension (-1), the instant (seconds since the Unix
  epoch, and nanoseconds). It arrives as an aware datetime in UTC: the instant is kept, the
  original offset (or zone) is not.
- a naive datetime (no tzinfo, or one whose ``utcoffset()`` is None): extension 6, UTF-8
  ``YYYY-MM-DDTHH:MM:SS[.ffffff]``; it arrives naive.
- a date: extension 7, UTF-8 ``YYYY-MM-DD``.
- a timedelta: extension 8, msgpack ``[days, seconds, microseconds]``.
- a Decimal: extension 9, UTF-8 of ``str(value)`` (NaN, sNaN, Infinity, -0 and exponents
  arrive exactly as sent).
- a UUID: extension 10, its 16 bytes.

Rules:
- A datetime is a date: it is checked first.
- Subclasses travel as their base type (as subclasses of int and str do): a
  ``pandas.Timestamp`` arrives as a datetime, without its nanoseconds.
- An aware datetime whose UTC instant falls outside years 1..9999 is refused when it is
  encoded: the receiver could not rebuild it.
- A payload of these codes that does not decode raises ``Malformed`` naming the type and
  what is wrong; ``decode`` (``_codec.py``) reports it as SerializationError.

decimal and uuid are imported only when one of their values is seen (on encode) or arrives.
"""

from __future__ import annotations

import datetime
import re
import sys
from collections.abc import Callable
from typing import Any

import msgpack

from .._core._checks import shown
from ._unencodable import Refused
from ._user_types import FIRST_USER_CODE, LAST_USER_CODE

NAIVE_DATETIME_EXT = 6  # UTF-8 "YYYY-MM-DDTHH:MM:SS[.ffffff]"
DATE_EXT = 7  # UTF-8 "YYYY-MM-DD"
TIMEDELTA_EXT = 8  # msgpack [days, seconds, microseconds]
DECIMAL_EXT = 9  # UTF-8 of str(value)
UUID_EXT = 10  # the 16 bytes

_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
# The UTC instants a datetime can hold, in seconds since the epoch.
_MIN_SECONDS = (datetime.date.min.toordinal() - _EPOCH_ORDINAL) * 86400
_MAX_SECONDS = (datetime.date.max.toordinal() - _EPOCH_ORDINAL) * 86400 + 86399


class Malformed(ValueError):
    """A payload of a known extension code that does not decode (the message says why)."""


# --- encoding --------------------------------------------------------------------------------
def to_msgpack(obj: Any) -> Any:
    """``obj`` as msgpack carries it, or None if it is none of the types above.

    Raises:
        Refused: it is one of them, but cannot travel (the message says why).
    """
    if isinstance(obj, datetime.datetime):  # before date: every datetime is a date
        return _datetime(obj)
    if isinstance(obj, datetime.date):
        return msgpack.ExtType(DATE_EXT, _ymd(obj).encode())
    if isinstance(obj, datetime.timedelta):
        parts = msgpack.packb([obj.days, obj.seconds, obj.microseconds])
        return msgpack.ExtType(TIMEDELTA_EXT, parts)
    decimal = sys.modules.get("decimal")  # not loaded: ``obj`` is no Decimal
    if decimal is not None and isinstance(obj, decimal.Decimal):
        # str() writes "e" under a context with capitals=0; the wire has "E" (the specials,
        # "Infinity", "NaN" and "sNaN", hold no "e").
        text = decimal.Decimal.__str__(obj).replace("e", "E")
        return msgpack.ExtType(DECIMAL_EXT, text.encode())
    uuid = sys.modules.get("uuid")
    if uuid is not None and isinstance(obj, uuid.UUID):
        return msgpack.ExtType(UUID_EXT, obj.int.to_bytes(16, "big"))
    return None


def _ymd(day: datetime.date) -> str:
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def _datetime(obj: datetime.datetime) -> Any:
    try:
        offset = obj.utcoffset()
    except Exception as exc:  # a tzinfo of the caller's own
        raise Refused(obj, f"its tzinfo's utcoffset() raised {type(exc).__name__}: {exc}") from exc
    if offset is None:
        text = f"{_ymd(obj)}T{obj.hour:02d}:{obj.minute:02d}:{obj.second:02d}"
        if obj.microsecond:
            text += f".{obj.microsecond:06d}"
        return msgpack.ExtType(NAIVE_DATETIME_EXT, text.encode())
    # Integer arithmetic: a float timestamp cannot hold microseconds far from the epoch.
    days = datetime.date.toordinal(obj) - _EPOCH_ORDINAL
    local = ((days * 24 + obj.hour) * 60 + obj.minute) * 60 + obj.second
    micros = local * 1_000_000 + obj.microsecond - offset // datetime.timedelta(microseconds=1)
    seconds, micros = divmod(micros, 1_000_000)
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise Refused(
            obj,
            f"an aware datetime whose UTC instant is outside years 1 to 9999 ({shown(obj)}) "
            "cannot be rebuilt where it arrives, in UTC; send it naive, or value.isoformat()",
        )
    return msgpack.Timestamp(seconds, micros * 1000)


# --- decoding --------------------------------------------------------------------------------
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DATE_TEXT = re.compile(_DATE)
_NAIVE_TEXT = re.compile(_DATE + r"T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?")
# str(Decimal): a number with an optional exponent, an infinity, or a (signaling) NaN with
# its diagnostic digits; what Decimal() also accepts beyond that (spaces, "_", non-ASCII
# digits) is not a payload.
_DECIMAL_TEXT = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|s?nan[0-9]*)",
    re.IGNORECASE,
)


def _text(data: bytes, what: str, form: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        why = f"{what} must be UTF-8 {form}; got bytes that are not UTF-8 ({exc.reason})"
        raise Malformed(why) from None


def _iso(data: bytes, what: str, form: str, pattern: re.Pattern[str], kind: Any) -> Any:
    """``kind.fromisoformat`` of the payload, once it matched ``pattern`` (ASCII digits only:
    fromisoformat takes other forms and other digits too)."""
    text = _text(data, what, form)
    if pattern.fullmatch(text) is None:
        raise Malformed(f"{what} must be {form}, got {shown(text[:80])}")
    try:
        return kind.fromisoformat(text)
    except ValueError as exc:
        raise Malformed(f"{what}: {text!r} is not a {kind.__name__} ({exc})") from None


def _naive_datetime(data: bytes) -> datetime.datetime:
    form = "'YYYY-MM-DDTHH:MM:SS[.ffffff]'"
    value: datetime.datetime = _iso(
        data, "a naive datetime (extension 6)", form, _NAIVE_TEXT, datetime.datetime
    )
    return value


def _date(data: bytes) -> datetime.date:
    value: datetime.date = _iso(
        data, "a date (extension 7)", "'YYYY-MM-DD'", _DATE_TEXT, datetime.date
    )
    return value


def _timedelta(data: bytes) -> datetime.timedelta:
    what = "a timedelta (extension 8) must be msgpack [days, seconds, microseconds]"
    try:
        parts = msgpack.unpackb(data, raw=False)
    except Exception as exc:
        raise Malformed(f"{what}; its payload is not one msgpack value ({exc})") from None
    if type(parts) is not list or len(parts) != 3 or any(type(p) is not int for p in parts):
        raise Malformed(f"{what} (three integers), got {shown(parts)}")
    days, seconds, microseconds = parts
    try:
        return datetime.timedelta(days=days, seconds=seconds, microseconds=microseconds)
    except OverflowError as exc:
        raise Malformed(f"a timedelta (extension 8) {parts} is out of range ({exc})") from None


def _decimal(data: bytes) -> Any:
    import decimal

    what, form = "a Decimal (extension 9)", "str(Decimal)"
    text = _text(data, what, form)
    if _DECIMAL_TEXT.fullmatch(text) is None:
        raise Malformed(f"{what} must be UTF-8 {form}, got {shown(text[:80])}")
    try:
        # The context only says what a bad string does (raise); it does not round.
        return decimal.Decimal(text, _trapping(decimal))
    except decimal.InvalidOperation:
        raise Malformed(f"{what}: {shown(text[:80])} is out of Decimal's range") from None


def _trapping(decimal: Any) -> Any:
    return decimal.Context(traps=[decimal.InvalidOperation])


def _uuid(data: bytes) -> Any:
    import uuid

    if len(data) != 16:
        raise Malformed(f"a UUID (extension 10) must be 16 bytes, got {len(data)}")
    return uuid.UUID(bytes=data)


# The decoder of each extension code above.
DECODERS: dict[int, Callable[[bytes], Any]] = {
    NAIVE_DATETIME_EXT: _naive_datetime,
    DATE_EXT: _date,
    TIMEDELTA_EXT: _timedelta,
    DECIMAL_EXT: _decimal,
    UUID_EXT: _uuid,
}


def timestamp_problem(exc: Exception) -> str | None:
    """What is wrong with a timestamp (extension -1), if msgpack's ``exc`` is about one.

    msgpack decodes timestamps itself (no ext_hook sees them); its errors do not say which
    value was wrong, so the message of a SerializationError names it from here.
    """
    text = str(exc)
    if isinstance(exc, OverflowError) and "out of range" in text:
        return (
            "a timestamp (extension -1) outside the years 1 to 9999 that a datetime can hold "
            f"({text})"
        )
    if isinstance(exc, ValueError) and ("timestamp" in text or "nanoseconds" in text):
        return f"a malformed timestamp (extension -1): {text}"
    return None


def unknown_code(code: int) -> str:
    """Why an extension of ``code`` cannot be decoded here."""
    if FIRST_USER_CODE <= code <= LAST_USER_CODE:
        return (
            f"extension code {code} is a registered type's, and no type is registered with "
            f"code {code} in this process; register it here too with "
            "snakepit_trio.register_type (in a worker: at import of the adapter's module; "
            "in the host: before calling)"
        )
    if code >= 0:
        return (
            f"extension code {code} is reserved for snakepit_trio and unknown to this "
            "version (are host and worker the same version?)"
        )
    return f"extension code {code} is not one snakepit_trio sends"
