"""The payload codec (synchronous, no workers) on a user's own types: ``register_type``.

A registered class travels as its extension code, its payload the encoding of what its
``encode`` returned, and comes back through its ``decode``; bad registrations raise
TypeError or ValueError saying what to change; an encode or decode that fails, or an
unknown code, is a SerializationError naming the type.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import snakepit_trio as sp
from snakepit_trio._shared import _shm, _user_types
from snakepit_trio._shared._codec import Outbound, decode, encode
from snakepit_trio._shared._segments import SegmentCache

LIMIT = 1 << 22


@pytest.fixture(autouse=True)
def _registry() -> Iterator[None]:
    """Each test registers on a clean slate, and leaves the process's registry as it was."""
    saved = dict(_user_types.BY_TYPE), dict(_user_types.BY_CODE)
    _user_types.BY_TYPE.clear()
    _user_types.BY_CODE.clear()
    yield
    _user_types.BY_TYPE.clear()
    _user_types.BY_CODE.clear()
    _user_types.BY_TYPE.update(saved[0])
    _user_types.BY_CODE.update(saved[1])


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float
    label: str = ""


class Pinned(Point):
    pass


@dataclasses.dataclass
class Segment:
    a: Point
    b: Point


def _register_point(code: int = 40) -> None:
    sp.register_type(Point, code, encode=dataclasses.astuple, decode=lambda fields: Point(*fields))


def _register_segment(code: int = 41) -> None:
    sp.register_type(Segment, code, encode=lambda s: [s.a, s.b], decode=lambda ab: Segment(*ab))


def _round_trip(value: Any) -> Any:
    return decode(encode(value, what="the value", limit=LIMIT), what="the value")


def _refusal(value: Any) -> str:
    with pytest.raises(sp.SerializationError) as info:
        encode(value, what="the value", limit=LIMIT)
    text = str(info.value)
    assert text.startswith("cannot encode the value: "), text
    return text.removeprefix("cannot encode the value: ")


# --- round trips -----------------------------------------------------------------------------
def test_a_registered_dataclass_travels_as_its_code() -> None:
    _register_point()
    point = Point(1, 2.5, "a")
    data = encode([point], what="the value", limit=LIMIT)
    assert data == msgpack.packb([msgpack.ExtType(40, msgpack.packb([1, 2.5, "a"]))])
    assert decode(data, what="the value") == [point]


def test_registered_types_nest_and_mix_with_every_other_value() -> None:
    _register_point()
    _register_segment()
    value = {
        Point(0, 0.0): "origin as a key",
        "segment": Segment(Point(1, 1.0), Point(2, 2.0, "end")),
        "many": (Point(3, 3.0), [Point(4, 4.0)]),
        "when": datetime.date(2024, 1, 1),
    }
    back = _round_trip(value)
    assert back == {**value, "many": [Point(3, 3.0), [Point(4, 4.0)]]}
    assert type(back["segment"].a) is Point


def test_an_encoded_value_may_hold_arrays_and_everyday_values() -> None:
    @dataclasses.dataclass
    class Frame:
        when: datetime.datetime
        price: decimal.Decimal
        data: Any

    sp.register_type(
        Frame,
        42,
        encode=lambda f: {"when": f.when, "price": f.price, "data": f.data},
        decode=lambda d: Frame(**d),
    )
    frame = Frame(datetime.datetime(2024, 1, 1, 9), decimal.Decimal("1.10"), np.arange(6.0))
    back = _round_trip(frame)
    assert back.when == frame.when and str(back.price) == "1.10"
    assert np.array_equal(back.data, frame.data)


def test_with_shared_memory_an_encoded_value_travels_inline() -> None:
    _register_segment()
    _register_point()
    cache = SegmentCache(_shm.prefix("usertypes", "host"))
    out = Outbound(cache, threshold=1024)
    big = np.arange(4096.0)  # beside the object: shared memory; inside it: inline

    @dataclasses.dataclass
    class Holder:
        array: Any

    sp.register_type(Holder, 43, encode=lambda h: h.array, decode=Holder)
    try:
        data = encode(
            {"big": big, "holder": Holder(big), "p": Point(1, 1.0)},
            what="the value",
            limit=LIMIT,
            shm=out,
        )
        assert len(out.names) == 1  # one segment: the array beside the object
        back = decode(data, what="the value")
        assert np.array_equal(back["big"], big) and np.array_equal(back["holder"].array, big)
        assert back["p"] == Point(1, 1.0)
        del back
    finally:
        out.release()
        for name in cache.free_names() + cache.out_names():
            _shm.unlink(name)


@given(
    st.builds(
        Point,
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False),
        st.text(max_size=8),
    )
)
def test_generated_points_round_trip(point: Point) -> None:
    if Point not in _user_types.BY_TYPE:  # the fixture runs once for all examples
        _register_point()
    assert _round_trip({"p": point}) == {"p": point}


def test_registering_again_replaces_the_functions() -> None:
    _register_point()
    sp.register_type(Point, 40, encode=lambda p: [p.x, p.y, "again"], decode=lambda f: Point(*f))
    assert _round_trip(Point(1, 1.0)) == Point(1, 1.0, "again")


def test_a_class_imported_again_takes_its_code_over() -> None:
    def define() -> type:
        @dataclasses.dataclass
        class Thing:
            n: int

        return Thing

    first, second = define(), define()  # the same module and name, as after a re-import
    sp.register_type(first, 50, encode=lambda t: t.n, decode=first)
    sp.register_type(second, 50, encode=lambda t: t.n, decode=second)
    assert type(_round_trip(second(3))) is second
    assert "an object of type 'Thing'" in _refusal(first(3))  # its earlier self is gone


# --- registration errors -----------------------------------------------------------------
def _noop(value: Any) -> Any:
    return value


class Pair(NamedTuple):
    a: int
    b: int


class Flag(enum.IntEnum):
    ON = 1


class Text(str):
    __slots__ = ()


REGISTRATION_ERRORS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("an instance", {"cls": Point(1, 1.0)}, TypeError, "register_type() needs a class, got Point("),
    ("a generic alias", {"cls": list[int]}, TypeError, "needs a class"),
    ("a str code", {"code": "40"}, TypeError, "code must be an int from 32 to 127"),
    ("a bool code", {"code": True}, TypeError, "code must be an int"),
    ("a numpy code", {"code": np.int64(40)}, TypeError, "code must be an int"),
    ("code 31", {"code": 31}, ValueError, "code 31 is out of range: codes 32 to 127 are for"),
    ("code 0", {"code": 0}, ValueError, "0 to 31 are snakepit_trio's own"),
    ("code 128", {"code": 128}, ValueError, "code 128 is out of range"),
    ("code -1", {"code": -1}, ValueError, "out of range"),
    ("encode not callable", {"encode": None}, TypeError, "encode must be callable, got NoneType"),
    ("decode not callable", {"decode": "Point"}, TypeError, "decode must be callable, got str"),
    ("int", {"cls": int}, ValueError, "cannot register int: int travels as it is"),
    ("dict", {"cls": dict}, ValueError, "dict travels as it is"),
    ("a NamedTuple", {"cls": Pair}, ValueError, "Pair is a subclass of tuple, which msgpack"),
    ("an IntEnum", {"cls": Flag}, ValueError, "Flag is a subclass of int"),
    ("a bool", {"cls": bool}, ValueError, "bool travels as it is"),
    ("a str subclass", {"cls": Text}, ValueError, "convert them to your class where they arrive"),
    ("datetime", {"cls": datetime.datetime}, ValueError, "datetime.datetime travels already"),
    ("date", {"cls": datetime.date}, ValueError, "travels already"),
    ("timedelta", {"cls": datetime.timedelta}, ValueError, "travels already"),
    ("Decimal", {"cls": decimal.Decimal}, ValueError, "decimal.Decimal travels already"),
    ("UUID", {"cls": uuid.UUID}, ValueError, "uuid.UUID travels already"),
    ("ndarray", {"cls": np.ndarray}, ValueError, "numpy arrays travel already"),
    ("msgpack's Timestamp", {"cls": msgpack.Timestamp}, ValueError, "travels already"),
]


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [(c, e, m) for _, c, e, m in REGISTRATION_ERRORS],
    ids=[n for n, _, _, _ in REGISTRATION_ERRORS],
)
def test_a_bad_registration_says_what_to_change(
    change: dict[str, Any], error: type[Exception], message: str
) -> None:
    args: dict[str, Any] = {"cls": Point, "code": 40, "encode": _noop, "decode": _noop, **change}
    with pytest.raises(error) as info:
        sp.register_type(args.pop("cls"), args.pop("code"), **args)
    assert message in str(info.value)
    assert _user_types.BY_TYPE == {} and _user_types.BY_CODE == {}


def test_a_code_belongs_to_one_class_and_a_class_has_one_code() -> None:
    _register_point(40)
    with pytest.raises(ValueError, match=r"code 40 is registered already, for .*\.Point; give"):
        _register_segment(40)
    with pytest.raises(ValueError, match=r"Point is registered already, with code 40; a type"):
        _register_point(41)
    assert set(_user_types.BY_CODE) == {40}
    assert _round_trip(Point(1, 1.0)) == Point(1, 1.0)


def test_the_worker_door_registers_the_same_function() -> None:
    import snakepit_trio.worker

    assert snakepit_trio.worker.register_type is sp.register_type


# --- what cannot travel ------------------------------------------------------------------------
def test_a_subclass_is_refused_with_a_hint_to_register_it() -> None:
    _register_point()
    why = _refusal({"p": Pinned(1, 1.0)})
    assert why.startswith("at ['p']: an object of type 'Pinned'; its class is a subclass of")
    assert "'Point', which is registered" in why and "register this one too" in why


def test_an_unregistered_dataclass_names_register_type() -> None:
    assert _refusal([Point(1, 1.0)]) == (
        "at [0]: an object of type 'Point'; send dataclasses.asdict(value), or register its "
        "type with snakepit_trio.register_type"
    )


def test_an_encode_that_raises_is_named_where_its_object_is() -> None:
    def boom(point: Point) -> Any:
        raise ValueError("no coordinates")

    sp.register_type(Point, 40, encode=boom, decode=_noop)
    assert _refusal({"a": [1, Point(1, 1.0)]}) == (
        "at ['a'][1]: the encode registered for 'Point' (code 40) raised ValueError: no coordinates"
    )


def test_an_encode_that_returns_what_cannot_travel_says_what_it_returned() -> None:
    sp.register_type(Point, 40, encode=lambda p: {"tags": {p.x}}, decode=_noop)
    assert _refusal(Point(1, 1.0)) == (
        "the encode registered for 'Point' (code 40) returned what cannot travel: "
        "at ['tags']: an object of type 'set'; send a list: list(value)"
    )


def test_an_encode_that_returns_its_own_type_is_refused() -> None:
    sp.register_type(Point, 40, encode=lambda p: p, decode=_noop)
    assert "returned a 'Point' again; return what it is made of" in _refusal(Point(1, 1.0))


def test_an_inner_failure_is_named_through_the_outer_type() -> None:
    sp.register_type(Point, 40, encode=lambda p: 1 / 0, decode=_noop)
    _register_segment()
    assert _refusal([Segment(Point(1, 1.0), Point(2, 2.0))]) == (
        "at [0]: the encode registered for 'Segment' (code 41) returned what cannot travel: "
        "at [0]: the encode registered for 'Point' (code 40) raised ZeroDivisionError: "
        "division by zero"
    )


def test_types_that_encode_each_other_for_ever_are_refused() -> None:
    @dataclasses.dataclass
    class Ping:
        pass

    @dataclasses.dataclass
    class Pong:
        pass

    sp.register_type(Ping, 60, encode=lambda _: [Pong()], decode=_noop)
    sp.register_type(Pong, 61, encode=lambda _: [Ping()], decode=_noop)
    assert _refusal({"x": Ping()}) == (  # said once, not once per level
        "at ['x']: the encode registered for 'Ping' (code 60) returned registered types "
        "nested too deep (does an encode return an object whose encoding leads back to it?)"
    )


def test_a_failure_deep_in_nested_types_gives_a_short_message_ending_with_the_cause() -> None:
    @dataclasses.dataclass
    class Node:
        next: Any

    sp.register_type(Node, 62, encode=lambda n: [n.next], decode=_noop)
    chain: Any = object()
    for _ in range(60):
        chain = Node(chain)
    why = _refusal(chain)
    assert len(why) < 800, why
    assert why.startswith("the encode registered for 'Node' (code 62) returned what cannot")
    assert "at [0]: an object of type 'object'; convert it to" in why  # the cause, at the end
    assert why.endswith("(nothing is pickled)")


def test_an_encode_out_of_memory_is_not_a_serialization_error() -> None:
    def exhausted(point: Point) -> Any:
        raise MemoryError

    sp.register_type(Point, 40, encode=exhausted, decode=_noop)
    with pytest.raises(MemoryError):
        encode(Point(1, 1.0), what="the value", limit=LIMIT)


# --- what cannot be decoded --------------------------------------------------------------------
def _cannot_decode(data: bytes) -> str:
    with pytest.raises(sp.SerializationError) as info:
        decode(data, what="result of 'f'")
    text = str(info.value)
    assert text.startswith("cannot decode result of 'f': "), text
    return text.removeprefix("cannot decode result of 'f': ")


def test_an_unknown_user_code_says_to_register_it() -> None:
    data = msgpack.packb({"p": msgpack.ExtType(99, msgpack.packb([1, 2.0, ""]))})
    assert _cannot_decode(data) == (
        "extension code 99 is a registered type's, and no type is registered with code 99 in "
        "this process; register it here too with snakepit_trio.register_type (in a worker: "
        "at import of the adapter's module; in the host: before calling)"
    )


def test_a_decode_that_raises_is_a_serialization_error_and_runs_once() -> None:
    calls: list[Any] = []

    def refuse(fields: Any) -> Point:
        calls.append(fields)
        raise TypeError("wrong fields")  # a TypeError must not look like a tuple key

    sp.register_type(Point, 40, encode=dataclasses.astuple, decode=refuse)
    data = encode([Point(1, 1.0)], what="the value", limit=LIMIT)
    assert _cannot_decode(data) == (
        "the decode registered for 'Point' (extension 40) raised TypeError: wrong fields"
    )
    assert calls == [[1, 1.0, ""]]


def test_a_payload_that_is_not_msgpack_is_named() -> None:
    _register_point()
    data = msgpack.packb([msgpack.ExtType(40, b"\xc1")])
    assert _cannot_decode(data).startswith("the payload of a 'Point' (extension 40) does not")


def test_a_malformed_value_inside_a_registered_type_is_named() -> None:
    _register_point()
    data = msgpack.packb([msgpack.ExtType(40, msgpack.packb([msgpack.ExtType(10, b"x")]))])
    assert "a UUID (extension 10) must be 16 bytes, got 1" in _cannot_decode(data)


def test_a_key_decoded_to_something_unhashable_is_named() -> None:
    @dataclasses.dataclass(frozen=True)
    class Key:
        n: int

    @dataclasses.dataclass  # compares by value, so it has no hash
    class Loose:
        n: int

    sp.register_type(Key, 44, encode=lambda k: k.n, decode=Loose)
    data = encode({Key(1): "v"}, what="the value", limit=LIMIT)
    assert _cannot_decode(data) == (
        "unhashable type: 'Loose' (a dict key must be hashable where it arrives: a registered "
        "type's decode returned an object that is not)"
    )
