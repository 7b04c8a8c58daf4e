"""The payload codec (synchronous, no workers) on everyday values: datetime, date, timedelta,
Decimal and UUID travel both ways, exactly, in the wire formats that other languages' workers
read (proto/snakepit/v1/worker.proto, "Values"); a malformed payload of their codes is a
SerializationError naming the type and what is wrong, never a ValueError of its own.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
import zoneinfo
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

import snakepit_trio as sp
from snakepit_trio._shared._codec import decode, encode

UTC = datetime.UTC
LIMIT = 1 << 20


def _round_trip(value: Any) -> Any:
    return decode(encode(value, what="the value", limit=LIMIT), what="the value")


def _exactly(a: Any, b: Any) -> bool:
    """Same type, same value; for a Decimal, the same digits, sign and exponent too."""
    if type(a) is not type(b):
        return False
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    return bool(a == b)


# --- the wire formats ----------------------------------------------------------------------
WIRE: list[tuple[str, Any, Any]] = [
    (
        "naive datetime",
        datetime.datetime(2024, 1, 2, 3, 4, 5),
        msgpack.ExtType(6, b"2024-01-02T03:04:05"),
    ),
    (
        "naive datetime with microseconds",
        datetime.datetime(987, 6, 5, 4, 3, 2, 10),
        msgpack.ExtType(6, b"0987-06-05T04:03:02.000010"),
    ),
    ("date", datetime.date(2024, 2, 29), msgpack.ExtType(7, b"2024-02-29")),
    ("early date", datetime.date(12, 3, 4), msgpack.ExtType(7, b"0012-03-04")),
    (
        "timedelta",
        datetime.timedelta(days=-1, seconds=5, microseconds=7),
        msgpack.ExtType(8, msgpack.packb([-1, 5, 7])),
    ),
    ("Decimal", decimal.Decimal("-1.50E+7"), msgpack.ExtType(9, b"-1.50E+7")),
    ("Decimal NaN", decimal.Decimal("sNaN12"), msgpack.ExtType(9, b"sNaN12")),
    (
        "UUID",
        uuid.UUID(int=0x0102030405060708090A0B0C0D0E0F10),
        msgpack.ExtType(10, bytes(range(1, 17))),
    ),
]


@pytest.mark.parametrize(
    ("value", "ext"), [(v, e) for _, v, e in WIRE], ids=[n for n, _, _ in WIRE]
)
def test_each_type_has_its_code_and_payload(value: Any, ext: msgpack.ExtType) -> None:
    data = encode([value], what="the value", limit=LIMIT)
    assert data == msgpack.packb([ext])
    assert _exactly(_round_trip(value), value)


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),  # before the epoch
        datetime.datetime(1, 1, 1, tzinfo=UTC),
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime.datetime(2106, 2, 7, 6, 28, 16, tzinfo=UTC),  # past 32-bit seconds
        datetime.datetime(2024, 6, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    ],
    ids=str,
)
def test_an_aware_datetime_is_msgpacks_own_timestamp(value: datetime.datetime) -> None:
    # The payload msgpack-python writes for datetime=True, which every msgpack reader knows.
    assert encode(value, what="the value", limit=LIMIT) == msgpack.packb(value, datetime=True)


# --- round trips -----------------------------------------------------------------------------
@given(st.datetimes())
def test_naive_datetimes_round_trip_naive(value: datetime.datetime) -> None:
    back = _round_trip(value)
    assert _exactly(back, value) and back.tzinfo is None


@given(st.datetimes(timezones=st.timezones(), allow_imaginary=False))
def test_aware_datetimes_keep_their_instant_and_arrive_in_utc(value: datetime.datetime) -> None:
    try:
        expected = value.astimezone(UTC)
    except OverflowError:  # outside years 1..9999 in UTC: refused (see the adversarial tests)
        return
    back = _round_trip(value)
    assert type(back) is datetime.datetime and back.tzinfo is UTC
    # The same instant, to the microsecond (an ambiguous local time, in a zone's repeated
    # hour, never compares equal across zones: compare in UTC).
    assert back == expected and back.replace(tzinfo=None) == expected.replace(tzinfo=None)


@given(st.dates())
def test_dates_round_trip(value: datetime.date) -> None:
    assert _exactly(_round_trip(value), value)


@given(st.timedeltas())
def test_timedeltas_round_trip(value: datetime.timedelta) -> None:
    assert _exactly(_round_trip(value), value)


@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_decimals_round_trip_exactly(value: decimal.Decimal) -> None:
    assert _exactly(_round_trip(value), value)


@given(st.uuids())
def test_uuids_round_trip(value: uuid.UUID) -> None:
    assert _exactly(_round_trip(value), value)


EDGES: list[Any] = [
    datetime.datetime.min,
    datetime.datetime.max,
    datetime.datetime(2024, 1, 1, 0, 0, 0, 1),
    datetime.date.min,
    datetime.date.max,
    datetime.timedelta.min,
    datetime.timedelta.max,
    datetime.timedelta(microseconds=-1),
    datetime.timedelta(0),
    *(
        decimal.Decimal(text)
        for text in (
            "NaN",
            "-NaN",
            "sNaN",
            "-sNaN",
            "NaN123",
            "Infinity",
            "-Infinity",
            "0",
            "-0",
            "0E-7",
            "-0.000",
            "1E+3",
            "1.000",
            "-1.23E-400",
            "1E+425000000",
            "123456789012345678901234567890.1234567890123456789",
        )
    ),
    uuid.UUID(int=0),
    uuid.UUID(int=2**128 - 1),
]


@pytest.mark.parametrize("value", EDGES, ids=repr)
def test_edge_values_round_trip_exactly(value: Any) -> None:
    assert _exactly(_round_trip(value), value)
    assert _exactly(_round_trip({"k": [value]})["k"][0], value)


def test_a_decimal_is_written_the_same_under_any_context() -> None:
    with decimal.localcontext() as context:
        context.capitals = 0  # str() would write 1.5e+7
        data = encode(decimal.Decimal("1.5E+7"), what="the value", limit=LIMIT)
    assert data == msgpack.packb(msgpack.ExtType(9, b"1.5E+7"))


def test_offsets_are_normalized_to_utc_and_microseconds_kept() -> None:
    india = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    odd = datetime.timezone(datetime.timedelta(hours=-3, seconds=7, microseconds=11))
    assert _round_trip(datetime.datetime(2024, 1, 1, 5, 30, 0, 123456, tzinfo=india)) == (
        datetime.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    )
    back = _round_trip(datetime.datetime(2024, 1, 1, tzinfo=odd))
    assert back.tzinfo is UTC and back == datetime.datetime(
        2024, 1, 1, 2, 59, 52, 999989, tzinfo=UTC
    )


class _NoOffset(datetime.tzinfo):
    def utcoffset(self, dt: datetime.datetime | None) -> None:
        return None


class _Moment(datetime.datetime):
    pass


def test_a_tzinfo_without_an_offset_is_naive_and_subclasses_travel_as_the_base_type() -> None:
    back = _round_trip(datetime.datetime(2024, 1, 1, 9, tzinfo=_NoOffset()))
    assert back == datetime.datetime(2024, 1, 1, 9) and back.tzinfo is None
    moment = _round_trip(_Moment(2024, 1, 1, 9, 30, tzinfo=UTC))
    assert type(moment) is datetime.datetime and moment == _Moment(2024, 1, 1, 9, 30, tzinfo=UTC)


def test_everyday_values_may_be_dict_keys() -> None:
    value = {
        datetime.date(2024, 1, 1): "day",
        datetime.datetime(2024, 1, 1, 12): "naive",
        uuid.UUID(int=7): "id",
        (datetime.timedelta(1), decimal.Decimal("1.5")): "tuple",
    }
    assert _round_trip(value) == value


# --- malformed payloads --------------------------------------------------------------------
def _ext(code: int, payload: bytes) -> bytes:
    """msgpack of ``{"v": [extension]}``; negative codes (msgpack's own) written by hand."""
    if code >= 0:
        return msgpack.packb({"v": [msgpack.ExtType(code, payload)]})
    head = b"\xc7" + bytes([len(payload)]) + code.to_bytes(1, "big", signed=True)
    return msgpack.packb({"v": [None]})[:-1] + head + payload  # the None replaced


def _timestamp96(seconds: int, nanoseconds: int) -> bytes:
    return nanoseconds.to_bytes(4, "big") + seconds.to_bytes(8, "big", signed=True)


MALFORMED: list[tuple[str, int, bytes, str]] = [
    ("uuid too short", 10, b"x" * 5, "a UUID (extension 10) must be 16 bytes, got 5"),
    ("uuid empty", 10, b"", "a UUID (extension 10) must be 16 bytes, got 0"),
    ("uuid too long", 10, bytes(17), "must be 16 bytes, got 17"),
    (
        "datetime with a space",
        6,
        b"2024-01-02 03:04:05",
        "a naive datetime (extension 6) must be 'YYYY-MM-DDTHH:MM:SS[.ffffff]', got '2024-01-02 03",
    ),
    ("datetime with an offset", 6, b"2024-01-02T03:04:05+01:00", "must be 'YYYY-MM-DDTHH"),
    ("datetime with milliseconds", 6, b"2024-01-02T03:04:05.123", "must be 'YYYY-MM-DDTHH"),
    ("datetime, a date only", 6, b"2024-01-02", "must be 'YYYY-MM-DDTHH"),
    (
        "datetime in other digits",
        6,
        "\uff12\uff10\uff12\uff14-01-02T03:04:05".encode(),
        "must be 'YYYY-MM-DDTHH",
    ),
    ("datetime, month 13", 6, b"2024-13-02T03:04:05", "'2024-13-02T03:04:05' is not a datetime"),
    ("datetime, hour 24", 6, b"2024-01-02T24:00:00", "is not a datetime"),
    ("datetime not UTF-8", 6, b"\xff\xfe", "naive datetime (extension 6) must be UTF-8"),
    ("date, February 30", 7, b"2024-02-30", "a date (extension 7): '2024-02-30' is not a date"),
    ("date, year 0", 7, b"0000-01-01", "is not a date"),
    ("date without dashes", 7, b"20240101", "a date (extension 7) must be 'YYYY-MM-DD', got"),
    ("date with a time", 7, b"2024-01-01T00:00:00", "must be 'YYYY-MM-DD'"),
    ("date not UTF-8", 7, b"\x80", "a date (extension 7) must be UTF-8"),
    (
        "timedelta of two",
        8,
        msgpack.packb([1, 2]),
        "a timedelta (extension 8) must be msgpack [days, seconds, microseconds] (three "
        "integers), got [1, 2]",
    ),
    ("timedelta of four", 8, msgpack.packb([1, 2, 3, 4]), "(three integers), got [1, 2, 3, 4]"),
    ("timedelta with a str", 8, msgpack.packb([1, 2, "3"]), "three integers"),
    ("timedelta with a float", 8, msgpack.packb([1.0, 2, 3]), "three integers"),
    ("timedelta with a bool", 8, msgpack.packb([True, 0, 0]), "three integers"),
    ("timedelta as a map", 8, msgpack.packb({"days": 1}), "three integers"),
    ("timedelta as an int", 8, msgpack.packb(5), "(three integers), got 5"),
    ("timedelta not msgpack", 8, b"\xc1", "its payload is not one msgpack value"),
    ("timedelta, bytes after", 8, msgpack.packb([1, 2, 3]) + b"\x00", "not one msgpack value"),
    ("timedelta empty", 8, b"", "not one msgpack value"),
    ("timedelta too long", 8, msgpack.packb([10**9, 0, 0]), "[1000000000, 0, 0] is out of range"),
    ("decimal with spaces", 9, b" 1.5", "a Decimal (extension 9) must be UTF-8 str(Decimal)"),
    ("decimal with underscores", 9, b"1_000", "must be UTF-8 str(Decimal), got '1_000'"),
    ("decimal, a word", 9, b"abc", "got 'abc'"),
    ("decimal empty", 9, b"", "got ''"),
    ("decimal in other digits", 9, "\u0661\u0662".encode(), "must be UTF-8 str(Decimal)"),
    ("decimal beyond range", 9, b"1E+999999999999999999999", "is out of Decimal's range"),
    ("decimal not UTF-8", 9, b"\xff", "a Decimal (extension 9) must be UTF-8"),
    ("timestamp of 5 bytes", -1, b"12345", "a malformed timestamp (extension -1)"),
    (
        "timestamp past year 9999",
        -1,
        _timestamp96(253402300800, 0),
        "a timestamp (extension -1) outside the years 1 to 9999",
    ),
    ("timestamp before year 1", -1, _timestamp96(-62135596801, 0), "outside the years 1 to 9999"),
    ("timestamp, 10**9 nanoseconds", -1, _timestamp96(0, 10**9), "a malformed timestamp"),
    ("a reserved code", 11, b"", "extension code 11 is reserved for snakepit_trio and unknown"),
    ("the last reserved code", 31, b"x", "extension code 31 is reserved"),
    ("a negative code", -5, b"x", "extension code -5 is not one snakepit_trio sends"),
]


@pytest.mark.parametrize("mapped", [False, True], ids=["plain", "receiver"])
@pytest.mark.parametrize(
    ("code", "payload", "message"),
    [(c, p, m) for _, c, p, m in MALFORMED],
    ids=[n for n, _, _, _ in MALFORMED],
)
def test_a_malformed_payload_is_a_serialization_error_naming_its_type(
    code: int, payload: bytes, message: str, mapped: bool
) -> None:
    # mapped: decoded as a receiver does (with a hook for shared-memory segments).
    unmapped = (lambda name: None) if mapped else None
    with pytest.raises(sp.SerializationError) as info:
        decode(_ext(code, payload), what="result of 'f'", unmapped=unmapped)
    text = str(info.value)
    assert text.startswith("cannot decode result of 'f': "), text
    assert message in text, text


def test_a_malformed_payload_beside_a_tuple_key_is_still_a_serialization_error() -> None:
    # A tuple key makes decode try again with tuple keys; the second pass fails the same way.
    data = msgpack.packb({(1, 2): msgpack.ExtType(10, b"short")})
    with pytest.raises(sp.SerializationError, match="a UUID \\(extension 10\\) must be 16 bytes"):
        decode(data, what="the value")
