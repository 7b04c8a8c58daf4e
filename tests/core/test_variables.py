"""Core layer (synchronous): typed session variables and their constraints."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snakepit_trio._core._variables import VariableError, Variables, make_spec


def test_register_get_set_delete() -> None:
    v = Variables()
    v.register(make_spec("temperature", "float", min=0, max=2), 1)
    assert v.get("temperature") == 1.0 and isinstance(v.get("temperature"), float)
    v.set("temperature", 0.5)
    assert v.get("temperature") == 0.5
    v.delete("temperature")
    with pytest.raises(VariableError) as info:
        v.get("temperature")
    assert info.value.constraint == "name"


@pytest.mark.parametrize(
    ("spec", "value", "constraint"),
    [
        (make_spec("n", "int", min=1), 0, "min"),
        (make_spec("n", "int", max=9), 10, "max"),
        (make_spec("n", "int"), True, "type"),
        (make_spec("n", "int"), 1.5, "type"),
        (make_spec("f", "float", min=0), math.nan, "min/max"),
        (make_spec("m", "str", choices=["a", "b"]), "c", "choices"),
        (make_spec("s", "str", max_length=3), "abcd", "max_length"),
        (make_spec("l", "list", max_length=1), [1, 2], "max_length"),
        (make_spec("b", "bytes"), "text", "type"),
        (make_spec("a", "ndarray"), [1, 2], "type"),
        (make_spec("d", "dict"), [], "type"),
    ],
)
def test_each_constraint_is_named(spec, value, constraint) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(VariableError) as info:
        spec.check(value)
    assert info.value.constraint == constraint
    assert spec.name in str(info.value)


def test_bad_declarations() -> None:
    for kwargs, constraint in [
        ({"name": "x", "type_": "complex"}, "type"),
        ({"name": "x", "type_": "str", "min": 1}, "min/max"),
        ({"name": "x", "type_": "int", "max_length": 1}, "max_length"),
        ({"name": "x", "type_": "int", "min": 2, "max": 1}, "min/max"),
        ({"name": "", "type_": "int"}, "name"),
    ]:
        with pytest.raises(VariableError) as info:
            make_spec(**kwargs)
        assert info.value.constraint == constraint
    v = Variables()
    v.register(make_spec("x", "int"), 1)
    with pytest.raises(VariableError, match="already exists"):
        v.register(make_spec("x", "int"), 2)


@given(st.integers(), st.integers(-100, 100), st.integers(-100, 100))
def test_int_bounds_accept_exactly_the_range(value: int, low: int, high: int) -> None:
    if low > high:
        low, high = high, low
    spec = make_spec("n", "int", min=low, max=high)
    if low <= value <= high:
        assert spec.check(value) == value
    else:
        with pytest.raises(VariableError):
            spec.check(value)
