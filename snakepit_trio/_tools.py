"""Tool specs as the host sees them, and argument checks made before dispatch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._core._types import matches
from ._errors import InvalidArguments

__all__ = ["ParamSpec", "ToolSpec"]


@attrs.frozen
class ParamSpec:
    """One parameter of a tool.

    Attributes:
        name: keyword to pass it by.
        type: ``"int"``, ``"float"``, ``"str"``, ``"bool"``, ``"bytes"``, ``"list"``, ``"dict"``,
            ``"none"`` or ``"any"``; a trailing ``"?"`` means None is accepted too.
        required: no default value.
        default: the default value (None when required or not encodable).
    """

    name: str
    type: str
    required: bool
    default: Any = None


@attrs.frozen
class ToolSpec:
    """A tool the adapter offers (from ``pool.tools()``)."""

    name: str
    description: str
    streaming: bool
    params: tuple[ParamSpec, ...]
    accepts_extra: bool = False
    # The parameters' names, once per tool rather than once per call.
    _names: frozenset[str] = attrs.field(init=False, repr=False, eq=False, hash=False)

    @_names.default
    def _names_of_params(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params)


def check_arguments(spec: ToolSpec, args: Any) -> None:
    """Raise InvalidArguments when ``args`` cannot be passed to ``spec``'s tool."""
    if type(args) is not dict and not isinstance(args, Mapping):
        raise InvalidArguments(
            spec.name, None, f"pass a dict of keyword arguments, not {type(args).__name__}"
        )
    names = spec._names
    for key in args:
        if not isinstance(key, str):
            raise InvalidArguments(spec.name, None, f"argument names must be str, got {key!r}")
        if key not in names and not spec.accepts_extra:
            valid = ", ".join(sorted(names)) or "none"
            raise InvalidArguments(spec.name, key, f"unexpected argument (valid: {valid})")
    for p in spec.params:
        if p.name not in args:
            if p.required:
                raise InvalidArguments(spec.name, p.name, "missing required argument")
            continue
        value = args[p.name]
        if not matches(p.type, value):
            raise InvalidArguments(
                spec.name, p.name, f"expected {p.type}, got {type(value).__name__}"
            )
