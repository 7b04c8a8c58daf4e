"""The payload codec (synchronous, no workers) against adversarial values.

Whatever a caller passes, ``encode`` either produces bytes that ``decode`` turns back into
the same value (tuples as lists, numpy scalars as plain numbers) or raises
SerializationError / PayloadTooLarge naming where the problem is: never a RecursionError,
TypeError, BufferError or the exception of a container's own ``__iter__``. Both paths are
covered: inline, and with large buffers lifted into shared memory.
"""

from __future__ import annotations

import array
import dataclasses
import datetime
import decimal
import fractions
import math
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snakepit_trio as sp
from snakepit_trio._shared import _shm, _user_types
from snakepit_trio._shared._codec import Outbound, decode, encode
from snakepit_trio._shared._segments import SegmentCache

LIMIT = 1 << 26
THRESHOLD = 1 << 12  # buffers from 4 KiB go to shared memory in the "shm" runs
BIG = 1 << 14


@pytest.fixture
def segments() -> Iterator[SegmentCache]:
    cache = SegmentCache(_shm.prefix("codectest", "host"))
    yield cache
    for name in cache.free_names() + cache.out_names():
        _shm.unlink(name)


def _round_trip(value: Any, cache: SegmentCache | None) -> Any:
    out = None if cache is None else Outbound(cache, THRESHOLD)
    try:
        data = encode(value, what="the value", limit=LIMIT, shm=out)
        return decode(data, what="the value")
    finally:
        if out is not None:
            out.release()


def _nest(depth: int, leaf: Any, *, as_dict: bool = False) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"k": value} if as_dict else [value]
    return value


class _BadIter(list):  # type: ignore[type-arg]
    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("iteration is broken")


class _BadItems(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise RuntimeError("items are broken")


class _BadLen(list):  # type: ignore[type-arg]
    def __len__(self) -> int:
        raise RuntimeError("len is broken")


class _BadIndex:
    def __index__(self) -> int:
        raise RuntimeError("index is broken")


class _FloatSub(float):
    pass


class _StrSub(str):
    __slots__ = ()


class _IntSub(int):
    pass


_HOUR = datetime.timedelta(hours=1)


class _BrokenZone(datetime.tzinfo):
    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
        raise RuntimeError("no offset")


class _DateSub(datetime.date):
    pass


class _DecimalSub(decimal.Decimal):
    pass


@dataclasses.dataclass(frozen=True)
class _Card:  # registered (code 120)
    rank: int
    suit: str


class _Joker(_Card):  # not registered: a registration covers exactly its class
    pass


class _Broken:  # registered (code 121); its encode raises
    pass


@dataclasses.dataclass
class _Unregistered:
    pass


def _no_encoding(value: Any) -> Any:
    raise RuntimeError("cannot encode this")


@pytest.fixture(scope="module", autouse=True)
def _registered() -> Iterator[None]:
    sp.register_type(_Card, 120, encode=lambda c: [c.rank, c.suit], decode=lambda v: _Card(*v))
    sp.register_type(_Broken, 121, encode=_no_encoding, decode=lambda v: _Broken())
    yield
    for cls in (_Card, _Broken):
        del _user_types.BY_CODE[_user_types.BY_TYPE.pop(cls).code]


def _holds_itself() -> list[Any]:
    value: list[Any] = [1]
    value.append(value)
    return value


def _dict_holds_itself() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["me"] = value
    return value


# (value, what it must decode to, or the SerializationError text it must give)
REFUSED: list[tuple[str, Any, str]] = [
    ("nested 1,025 deep", lambda: _nest(1025, 1), "nested more than 1,024 levels deep"),
    ("dicts 2,000 deep", lambda: _nest(2000, 1, as_dict=True), "more than 1,024 levels"),
    ("deep with a big buffer", lambda: _nest(1100, b"x" * BIG), "more than 1,024 levels"),
    ("a list holding itself", _holds_itself, "at [1]: a list that contains itself"),
    ("a dict holding itself", _dict_holds_itself, "at ['me']: a dict that contains itself"),
    ("int beyond 64 bits", lambda: [2**64], "out of msgpack's 64-bit range"),
    ("negative int beyond 64 bits", lambda: {"n": -(2**63) - 1}, "at ['n']: the integer"),
    ("lone surrogate", lambda: ["ok", "\ud800"], "at [1]: a str that is not valid UTF-8"),
    ("time", lambda: {"when": datetime.time(12)}, "at ['when']: an object of type 'time'"),
    (
        "aware datetime beyond year 9999 in UTC",
        lambda: [datetime.datetime(9999, 12, 31, 23, tzinfo=datetime.timezone(-_HOUR))],
        "at [0]: an aware datetime whose UTC instant is outside years 1 to 9999",
    ),
    (
        "aware datetime before year 1 in UTC",
        lambda: {"t": datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(_HOUR))},
        "at ['t']: an aware datetime whose UTC instant is outside years 1 to 9999",
    ),
    (
        "a tzinfo whose utcoffset raises",
        lambda: [datetime.datetime(2024, 1, 1, tzinfo=_BrokenZone())],
        "at [0]: its tzinfo's utcoffset() raised RuntimeError: no offset",
    ),
    (
        "a time beside a datetime",
        lambda: [datetime.datetime(2024, 1, 1), datetime.time()],
        "at [1]: an object of type 'time'",
    ),
    (
        "a registered type whose encode raises",
        lambda: {"b": [_Broken()]},
        "at ['b'][0]: the encode registered for '_Broken' (code 121) raised RuntimeError",
    ),
    ("a subclass of a registered type", lambda: [_Joker(1, "s")], "register this one too"),
    (
        "an unregistered dataclass",
        lambda: {"k": _Unregistered()},
        "send dataclasses.asdict(value), or register its type with snakepit_trio.register_type",
    ),
    ("Fraction", lambda: fractions.Fraction(1, 3), "numerator"),
    ("complex", lambda: 1 + 2j, "[value.real, value.imag]"),
    ("set", lambda: {1, 2}, "list(value)"),
    ("frozenset", frozenset, "list(value)"),
    ("array.array", lambda: array.array("i", [1]), "an object of type 'array'"),
    ("object", lambda: [object()], "at [0]: an object of type 'object'"),
    ("broken __index__", lambda: [_BadIndex()], "an object of type '_BadIndex'"),
    ("broken __iter__", lambda: {"a": _BadIter([1])}, "RuntimeError: iteration is broken"),
    ("broken items()", lambda: _BadItems(a=1), "RuntimeError: items are broken"),
    ("frozenset key", lambda: {"cfg": {frozenset({1}): 1}}, "at ['cfg']: a dict key of type"),
    ("object key", lambda: {object(): 1}, "dict keys may be str, int, float, bool, None"),
    ("int key beyond 64 bits", lambda: {2**64: 1}, "out of msgpack's 64-bit range"),
    (
        "non-contiguous memoryview",
        lambda: memoryview(bytes(range(10)))[::2],
        "not C-contiguous; send view.tobytes()",
    ),
    (
        "big non-contiguous memoryview",
        lambda: memoryview(np.zeros(2 * BIG, dtype=np.uint8))[::2],
        "not C-contiguous",
    ),
    ("object array", lambda: np.array([1, "a"], dtype=object), "dtype=object"),
    ("big object array", lambda: np.array([None] * BIG, dtype=object), "dtype=object"),
    (
        "structured array",
        lambda: np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
        "structured numpy arrays cannot travel",
    ),
    (
        "big structured array",
        lambda: np.zeros(BIG, dtype=[("a", "<i4"), ("b", "<f8")]),
        "structured numpy arrays cannot travel",
    ),
    ("numpy complex", lambda: np.complex64(1), "[value.real, value.imag]"),
    ("numpy datetime64", lambda: np.datetime64("2024-01-01"), "astype('int64')"),
    ("numpy void", lambda: np.zeros(1, dtype=[("a", "<i4")])[0], "'void'"),
]


@pytest.mark.parametrize("path", ["inline", "shm"])
@pytest.mark.parametrize(
    ("make", "message"), [(m, t) for _, m, t in REFUSED], ids=[n for n, _, _ in REFUSED]
)
def test_what_cannot_travel_is_named_in_a_serialization_error(
    make: Any, message: str, path: str, segments: SegmentCache
) -> None:
    with pytest.raises(sp.SerializationError) as info:
        _round_trip(make(), segments if path == "shm" else None)
    text = str(info.value)
    assert text.startswith("cannot encode the value: "), text
    assert message in text, text
    assert segments.out_names() == []  # nothing left lent out after a refusal


# (value, what it decodes to)
CARRIED: list[tuple[str, Any, Any]] = [
    ("float subclass", lambda: _FloatSub(1.5), 1.5),
    ("str subclass", lambda: _StrSub("s"), "s"),
    ("int subclass", lambda: _IntSub(7), 7),
    ("len that raises", lambda: _BadLen([1, 2]), [1, 2]),
    ("bytearray", lambda: bytearray(b"ab"), b"ab"),
    ("memoryview", lambda: memoryview(b"ab"), b"ab"),
    ("2-d memoryview", lambda: memoryview(np.arange(4, dtype=np.uint8).reshape(2, 2)), b"\0\1\2\3"),
    ("big bytearray", lambda: bytearray(BIG), bytes(BIG)),
    ("NaN and infinities", lambda: [math.nan, math.inf, -math.inf], None),
    ("tuple keys", lambda: {(1, ("a", None)): "v", (): 0}, {(1, ("a", None)): "v", (): 0}),
    ("odd keys", lambda: {None: 1, 1.5: 2, b"k": 3, True: 4, -1: 5}, None),
    ("numpy scalar keys", lambda: {np.int64(3): "a", np.str_("k"): "b"}, {3: "a", "k": "b"}),
    ("numpy float32", lambda: np.float32(1.5), 1.5),
    ("numpy float64", lambda: np.float64(2.25), 2.25),
    ("numpy float16", lambda: np.float16(0.5), 0.5),
    ("numpy int64", lambda: np.int64(-(2**63)), -(2**63)),
    ("numpy uint64", lambda: np.uint64(2**64 - 1), 2**64 - 1),
    ("numpy uint8", lambda: np.uint8(255), 255),
    ("numpy bool", lambda: [np.bool_(True), np.bool_(False)], [True, False]),
    ("numpy str and bytes", lambda: [np.str_("s"), np.bytes_(b"b")], ["s", b"b"]),
    ("naive datetime", lambda: {"when": datetime.datetime(2024, 1, 1, 12, 30, 1, 5)}, None),
    (
        "aware datetime, in UTC on arrival",
        lambda: datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone(-5 * _HOUR)),
        datetime.datetime(2024, 1, 1, 17, tzinfo=datetime.UTC),
    ),
    ("date", lambda: datetime.date(2024, 1, 1), None),
    ("date subclass, as a date", lambda: _DateSub(2024, 2, 3), datetime.date(2024, 2, 3)),
    ("timedelta", lambda: datetime.timedelta(-1, 5, 7), None),
    ("Decimal", lambda: decimal.Decimal("1.50"), None),
    ("Decimal subclass", lambda: _DecimalSub("-0.0"), decimal.Decimal("-0.0")),
    ("UUID", lambda: uuid.UUID(int=1), None),
    ("registered type", lambda: {"card": (_Card(12, "hearts"), 1)}, None),
    ("registered type as a key", lambda: {_Card(1, "s"): [_Card(2, "c")]}, None),
    (
        "everyday keys",
        lambda: {datetime.date(2024, 1, 1): 1, uuid.UUID(int=2): 2, (decimal.Decimal(1),): 3},
        None,
    ),
]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, decimal.Decimal):  # exactly the same digits, sign and exponent
        return type(b) is decimal.Decimal and str(a) == str(b)
    if isinstance(a, datetime.datetime):  # equal instants, or equal naive times
        return type(b) is datetime.datetime and a == b and (a.tzinfo is None) is (b.tzinfo is None)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("path", ["inline", "shm"])
@pytest.mark.parametrize(
    ("make", "expected"), [(m, e) for _, m, e in CARRIED], ids=[n for n, _, _ in CARRIED]
)
def test_what_can_travel_arrives_as_plain_values(
    make: Any, expected: Any, path: str, segments: SegmentCache
) -> None:
    value = make()
    back = _round_trip(value, segments if path == "shm" else None)
    if expected is None:
        expected = _plain(value)
    assert _same(expected, back), (expected, back)


def _unnest(value: Any) -> tuple[int, Any]:
    """(depth, leaf) of a value nested as ``_nest`` makes it, without recursing."""
    depth = 0
    while isinstance(value, list | dict) and len(value) == 1:
        value = value[0] if isinstance(value, list) else value["k"]
        depth += 1
    return depth, value


@pytest.mark.parametrize("path", ["inline", "shm"])
@pytest.mark.parametrize("as_dict", [False, True], ids=["lists", "dicts"])
@pytest.mark.parametrize("depth", [600, 1024])
@pytest.mark.parametrize(
    "leaf",
    [1, b"x" * BIG, np.arange(BIG, dtype=np.uint8)],
    ids=["small leaf", "big bytes", "big array"],
)
def test_nesting_up_to_1024_levels_travels_with_or_without_large_buffers(
    leaf: Any, depth: int, as_dict: bool, path: str, segments: SegmentCache
) -> None:
    # 600 levels over a large buffer used to raise RecursionError (shared-memory path).
    back = _round_trip(_nest(depth, leaf, as_dict=as_dict), segments if path == "shm" else None)
    got_depth, got_leaf = _unnest(back)
    assert got_depth == depth
    if isinstance(leaf, np.ndarray):
        assert np.array_equal(got_leaf, leaf)
    else:
        assert got_leaf == leaf


@pytest.mark.parametrize(
    "array",
    [
        np.array(3.5),  # 0-d stays 0-d
        np.arange(20, dtype=np.int16)[::3],
        np.zeros((2, 0, 3)),
        np.array(["ab", "c"]),
        np.arange(3).astype("datetime64[D]"),
        np.zeros(BIG, dtype=np.float32),
    ],
)
@pytest.mark.parametrize("path", ["inline", "shm"])
def test_plain_arrays_still_travel(array: Any, path: str, segments: SegmentCache) -> None:
    back = _round_trip({"a": [array]}, segments if path == "shm" else None)["a"][0]
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)


def test_a_tuple_key_with_shared_memory_is_refused_on_decode(segments: SegmentCache) -> None:
    # Decoding twice would map the segment twice; the receiver says what is wrong instead.
    out = Outbound(segments, THRESHOLD)
    data = encode({"big": b"x" * BIG, (1, 2): 1}, what="the value", limit=LIMIT, shm=out)
    with pytest.raises(sp.SerializationError, match="tuple as a dict key"):
        decode(data, what="the value")
    out.release()


def _plain(value: Any) -> Any:
    """What ``value`` becomes after a round trip."""
    if isinstance(value, dict):
        return {_plain_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime.datetime):
        if value.utcoffset() is None:
            return value.replace(tzinfo=None)
        return value.astimezone(datetime.UTC)
    if isinstance(value, datetime.date):
        return datetime.date(value.year, value.month, value.day)
    if isinstance(value, datetime.timedelta):
        return datetime.timedelta(value.days, value.seconds, value.microseconds)
    for kind in (bool, int, float, str, decimal.Decimal):
        if isinstance(value, kind):
            return kind(value)
    return value


def _plain_key(key: Any) -> Any:
    if isinstance(key, tuple):
        return tuple(_plain_key(k) for k in key)
    return _plain(key)


# --- generated values --------------------------------------------------------------------
def _in_utc_range(value: datetime.datetime) -> bool:
    try:
        value.astimezone(datetime.UTC)
    except OverflowError:
        return False
    return True


ODD_LEAVES = [
    datetime.time(1),
    datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(_HOUR)),
    fractions.Fraction(1, 2),
    _Broken(),
    _Joker(1, "j"),
    {1, 2},
    1j,
    object(),
    _BadIndex(),
    _BadIter([1]),
    np.complex128(1),
    np.datetime64(1, "D"),
    np.array([None], dtype=object),
    np.zeros(2, dtype=[("a", "<i2")]),
    memoryview(bytes(8))[::2],
    2**64,
    -(2**63) - 1,
    "\udc80",
]
GOOD_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(),
    st.text(max_size=10),
    st.binary(max_size=10),
    st.builds(bytearray, st.binary(max_size=10)),
    st.builds(memoryview, st.binary(max_size=10)),
    st.builds(_FloatSub, st.floats()),
    st.builds(_StrSub, st.text(max_size=5)),
    st.sampled_from([np.float32(0.25), np.int64(-5), np.uint8(7), np.bool_(False)]),
    st.just(np.arange(6, dtype=np.int32).reshape(2, 3)),
    st.just(b"B" * BIG),  # lifted to shared memory in the "shm" run
    st.datetimes(),
    st.datetimes(timezones=st.timezones(), allow_imaginary=False).filter(_in_utc_range),
    st.dates(),
    st.timedeltas(),
    st.decimals(),
    st.uuids(),
    st.builds(_Card, st.integers(1, 13), st.text(max_size=2)),
)
KEYS = st.one_of(
    st.text(max_size=5),
    st.integers(-(2**63), 2**64 - 1),
    st.none(),
    st.binary(max_size=3),
    st.tuples(st.integers(0, 3), st.text(max_size=2)),
    st.sampled_from([frozenset(), np.int64(1), 2**64, 0.5, _Card(1, "k")]),
)
VALUES = st.recursive(
    st.one_of(GOOD_LEAVES, st.sampled_from(ODD_LEAVES)),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(KEYS, inner, max_size=4)
    ),
    max_leaves=20,
)


def _check(value: Any, cache: SegmentCache | None) -> None:
    try:
        back = _round_trip(value, cache)
    except (sp.SerializationError, sp.PayloadTooLarge) as exc:
        if str(exc).startswith("cannot decode"):  # see the test just above these
            assert cache is not None and "tuple as a dict key" in str(exc)
            return
        assert str(exc).startswith("cannot encode the value: ")
        return
    expected = _plain(value)
    if not any(isinstance(x, np.ndarray) for x in _leaves(value)):
        assert _same(expected, back), (expected, back)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(k)
            yield from _leaves(v)
    elif isinstance(value, list | tuple) and not isinstance(value, _BadIter):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUES)
def test_generated_values_round_trip_or_raise_a_typed_error(value: Any) -> None:
    _check(value, None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUES)
def test_generated_values_with_shared_memory(value: Any) -> None:
    cache = SegmentCache(_shm.prefix("codectest", "gen"))
    try:
        _check(value, cache)
        assert cache.out_names() == []
    finally:
        for name in cache.free_names() + cache.out_names():
            _shm.unlink(name)
