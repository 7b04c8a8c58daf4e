"""Typed session variables: a declared type, optional constraints, checked on every write.

Pure and synchronous. A variable is registered once with its type and constraints; every
``set`` is checked against them, and a violation raises VariableError naming the variable,
the constraint it broke and what would be accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from . import _checks as checks
from ._types import matches

TYPES = ("int", "float", "bool", "str", "list", "dict", "bytes", "ndarray")


class VariableError(Exception):
    def __init__(self, name: str, constraint: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.constraint = constraint


@attrs.frozen
class VariableSpec:
    name: str
    type: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    max_length: int | None = None
    description: str = ""

    def check(self, value: Any) -> Any:
        """Return the value to store (floats for "float"); raise VariableError if invalid."""
        n = self.name
        if not matches(self.type, value):
            raise VariableError(
                n, "type", f"variable {n!r} is {self.type}; got {type(value).__name__}"
            )
        if self.type == "float":
            value = float(value)
            if math.isnan(value) and (self.min is not None or self.max is not None):
                raise VariableError(n, "min/max", f"variable {n!r} must be a number, not NaN")
        if self.min is not None and value < self.min:
            raise VariableError(n, "min", f"variable {n!r} must be >= {self.min}; got {value!r}")
        if self.max is not None and value > self.max:
            raise VariableError(n, "max", f"variable {n!r} must be <= {self.max}; got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise VariableError(
                n, "choices", f"variable {n!r} must be one of {list(self.choices)}; got {value!r}"
            )
        if self.max_length is not None and len(value) > self.max_length:
            raise VariableError(
                n,
                "max_length",
                f"variable {n!r} may hold at most {self.max_length} items; got {len(value)}",
            )
        if self.type == "list":
            return list(value)
        if self.type == "bytes":
            return bytes(value)
        return value


def make_spec(
    name: str,
    type_: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: Any = None,
    max_length: int | None = None,
    description: str = "",
) -> VariableSpec:
    """Validate a declaration; raise VariableError for a bad one."""
    if not isinstance(name, str) or not name:
        raise VariableError(str(name), "name", "a variable name must be a non-empty str")
    if type_ not in TYPES:
        raise VariableError(name, "type", f"unknown type {type_!r}; use one of {list(TYPES)}")
    declared: list[tuple[str, Callable[[], object]]] = [
        ("min", lambda: checks.number("min", min, minimum=None, unit="", none="no bound")),
        ("max", lambda: checks.number("max", max, minimum=None, unit="", none="no bound")),
        ("max_length", lambda: checks.whole("max_length", max_length, minimum=0, none="no limit")),
        ("description", lambda: checks.text("description", description)),
    ]
    for constraint, check in declared:
        try:
            check()
        except (TypeError, ValueError) as exc:
            raise VariableError(name, constraint, f"variable {name!r}: {exc}") from None
    if choices is not None and (isinstance(choices, str | bytes) or not _iterable(choices)):
        raise VariableError(
            name,
            "choices",
            f"variable {name!r}: choices must be a list of the allowed values; "
            f"got {checks.shown(choices)} ({checks.a_type(choices)})",
        )
    if (min is not None or max is not None) and type_ not in ("int", "float"):
        raise VariableError(name, "min/max", "min and max apply to int and float variables")
    if max_length is not None and type_ not in ("str", "list", "dict", "bytes"):
        raise VariableError(name, "max_length", "max_length applies to str, list, dict, bytes")
    if min is not None and max is not None and min > max:
        raise VariableError(name, "min/max", f"min {min} is greater than max {max}")
    return VariableSpec(
        name,
        type_,
        min,
        max,
        None if choices is None else tuple(choices),
        max_length,
        description,
    )


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


@attrs.define
class Variables:
    specs: dict[str, VariableSpec] = attrs.Factory(dict)
    values: dict[str, Any] = attrs.Factory(dict)

    def register(self, spec: VariableSpec, value: Any) -> None:
        if spec.name in self.specs:
            raise VariableError(spec.name, "name", f"variable {spec.name!r} already exists")
        checked = spec.check(value)
        self.specs[spec.name] = spec
        self.values[spec.name] = checked

    def _spec(self, name: str) -> VariableSpec:
        spec = self.specs.get(name)
        if spec is None:
            known = ", ".join(sorted(self.specs)) or "none"
            raise VariableError(name, "name", f"no variable {name!r} (registered: {known})")
        return spec

    def get(self, name: str) -> Any:
        self._spec(name)
        return self.values[name]

    def set(self, name: str, value: Any) -> None:
        self.values[name] = self._spec(name).check(value)

    def delete(self, name: str) -> None:
        self._spec(name)
        del self.specs[name], self.values[name]
