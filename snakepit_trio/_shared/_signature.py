"""Tool specs from signatures, for both sides: workers read their tools', the host its host
tools'. Parameters are called by keyword; their annotations map to the small type vocabulary
the host checks values against."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, NamedTuple

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


class Param(NamedTuple):
    name: str
    type: str
    required: bool
    default: Any  # None when required


class Signature(NamedTuple):
    params: tuple[Param, ...]
    accepts_extra: bool  # it takes **kwargs
    context_param: str | None  # the parameter that receives the call's context, if any


def read_signature(
    fn: Callable[..., Any], what: str, is_context: Callable[[Any], bool]
) -> Signature:
    """The keyword parameters of ``fn`` (``what`` names it in errors).

    A parameter whose annotation ``is_context`` accepts, or one named ``ctx`` without an
    annotation, receives the context and is not a parameter of the spec.

    Raises:
        TypeError: a positional-only or ``*args`` parameter (calls pass keywords only).
    """
    try:
        hints = typing.get_type_hints(inspect.unwrap(fn))
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    params: list[Param] = []
    accepts_extra = False
    context_param: str | None = None
    for p in inspect.signature(fn).parameters.values():
        annotation = hints.get(p.name, p.annotation)
        if is_context(annotation) or (p.name == "ctx" and annotation is inspect.Parameter.empty):
            context_param = p.name
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_extra = True
        elif p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            raise TypeError(
                f"{what}: parameter {p.name!r} is positional-only or *args; it is called "
                "with keyword arguments, so use ordinary parameters"
            )
        else:
            required = p.default is inspect.Parameter.empty
            params.append(
                Param(p.name, type_name(annotation), required, None if required else p.default)
            )
    return Signature(tuple(params), accepts_extra, context_param)
