"""A parameter's annotation in the small type vocabulary of tool specs (both sides derive
tool specs from signatures: workers for their tools, the host for host tools)."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

# Type names the host knows how to check; anything else is sent as "any".
_SIMPLE_TYPES: dict[Any, str] = {
    int: "int",
    float: "float",
    str: "str",
    bool: "bool",
    bytes: "bytes",
    bytearray: "bytes",
    list: "list",
    tuple: "list",
    dict: "dict",
    type(None): "none",
}


def type_name(annotation: Any) -> str:
    """Map an annotation to the small type vocabulary of ParamSpec.type.

    ``X | None`` becomes ``"X?"``; unions of other types and unknown classes become ``"any"``.
    """
    if annotation is inspect.Parameter.empty or annotation is Any:
        return "any"
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            inner = type_name(args[0])
            return "any" if inner == "any" else inner + "?"
        return "any"
    if origin is not None:
        annotation = origin
    return _SIMPLE_TYPES.get(annotation, "any")
