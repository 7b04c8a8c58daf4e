"""Why a payload cannot be encoded: where the offending part is, and what to send instead.

Used only after msgpack has refused a payload, so nothing here is on the hot path. The walk
mirrors what the codec carries (see ``_codec.py``): None, bool, int within 64 bits, float,
str (UTF-8), bytes-like (a memoryview must be C-contiguous), list, tuple, dict, numpy arrays
(not of Python objects, not structured), numpy bool/int/float scalars, datetime, date,
timedelta, Decimal, UUID (``_values.py``), the types registered with ``register_type``
(``_user_types.py``), DLPack tensors in host memory and Arrow tables
(``__arrow_c_stream__``, where pyarrow imports). It is iterative and bounded, so a value
nested too deep, or holding itself, is named instead of overflowing the stack.

An object of a carried type that still cannot travel (a registered type whose encode fails,
a datetime beyond UTC's years) raises ``Refused`` from the codec: the walk finds that very
object and says where it is and why.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from .._core._checks import shown
from .._core._types import is_ndarray, numpy_kind
from . import _arrow, _dlpack, _user_types

MAX_DEPTH = 1024  # msgpack refuses lists and maps nested deeper than this
_PATH_SHOWN = 6  # path elements shown before "..." (a deep path stays readable)

CARRIED = (
    "None, bool, int (64-bit), float, str, bytes, datetime, date, timedelta, Decimal, UUID, "
    "a list, tuple or dict of those, a numpy array (or a DLPack tensor in host memory), an "
    "Arrow table, or a type registered with snakepit_trio.register_type"
)
KEYS = (
    "dict keys may be str, int, float, bool, None, bytes, datetime, date, timedelta, Decimal, "
    "UUID, a registered type, or tuples of those"
)
_REGISTER = "or register its type with snakepit_trio.register_type"


class Refused(TypeError):
    """One object of a type the codec carries cannot travel; ``why`` says why.

    ``too_deep``: registered types nested past Python's recursion limit (said once, at the
    outermost of them, not once per level).
    """

    def __init__(self, obj: Any, why: str, *, too_deep: bool = False) -> None:
        super().__init__(why)
        self.obj = obj
        self.why = why
        self.too_deep = too_deep


def _everyday(obj: Any) -> bool:
    """Whether ``obj`` is a datetime, date, timedelta, Decimal or UUID (``_values.py``)."""
    import datetime

    if isinstance(obj, datetime.date | datetime.timedelta):
        return True
    decimal, uuid = sys.modules.get("decimal"), sys.modules.get("uuid")  # not loaded: not one
    return (decimal is not None and isinstance(obj, decimal.Decimal)) or (
        uuid is not None and isinstance(obj, uuid.UUID)
    )


def array_problem(array: Any) -> str | None:
    """Why this numpy array cannot travel, or None when it can."""
    if array.dtype.hasobject:
        return "numpy arrays of Python objects cannot travel (dtype=object)"
    if array.dtype.names is not None:
        return (
            "structured numpy arrays cannot travel (the wire carries a dtype string, which "
            "has no fields); send each field as its own array: "
            "{name: a[name] for name in a.dtype.names}"
        )
    return None


def _hint(obj: Any) -> str:
    """What to send instead of ``obj`` (a type the codec does not carry)."""
    import datetime
    import enum
    import fractions
    import pathlib

    kind = numpy_kind(obj)
    base = _user_types.registered_base(type(obj))
    if base is not None:
        return (
            f"its class is a subclass of {_user_types.shown_name(base)!r}, which is "
            "registered, but a "
            "registration covers exactly its own class: register this one too"
        )
    if isinstance(obj, set | frozenset):
        return "send a list: list(value)"
    if isinstance(obj, datetime.time):
        return "send value.isoformat()"
    if isinstance(obj, fractions.Fraction):
        return "send [value.numerator, value.denominator] or float(value)"
    if isinstance(obj, complex) or kind == "c":
        return "send [value.real, value.imag]"
    if isinstance(obj, pathlib.PurePath):
        return "send str(value)"
    if isinstance(obj, enum.Enum):
        return "send value.value or value.name"
    if kind in ("M", "m"):
        return "send str(value) or value.astype('int64')"
    if hasattr(type(obj), "__dataclass_fields__"):
        return f"send dataclasses.asdict(value), {_REGISTER}"
    if hasattr(type(obj), "__attrs_attrs__"):
        return f"send attrs.asdict(value), {_REGISTER}"
    return f"convert it to {CARRIED} (nothing is pickled)"


def _leaf_problem(obj: Any, refused: Refused | None, arrow: bool = True) -> str | None:
    """Why a value that is not a list, tuple or dict cannot travel, or None (``arrow``
    False: the receiver cannot read Arrow tables)."""
    if refused is not None and obj is refused.obj:
        return refused.why
    if obj is None or isinstance(obj, bool | float):
        return None
    if isinstance(obj, int):
        if -(2**63) <= obj < 2**64:
            return None
        return f"the integer {obj} is out of msgpack's 64-bit range; send it as a str"
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"a str that is not valid UTF-8 ({exc.reason} at index {exc.start})"
        return None
    if isinstance(obj, bytes | bytearray):
        return None
    if isinstance(obj, memoryview):
        if obj.c_contiguous:
            return None
        return "a memoryview that is not C-contiguous; send view.tobytes() or a numpy array"
    if is_ndarray(obj):
        return array_problem(obj)
    if numpy_kind(obj) in ("b", "i", "u", "f"):
        return None
    if type(obj) in _user_types.BY_TYPE or _everyday(obj):
        return None
    if _arrow.is_arrow(obj):
        return _arrow_problem(obj, arrow)
    if _dlpack.is_dlpack(obj):
        return _dlpack.device_problem(obj)
    return f"an object of type {type(obj).__name__!r}; {_hint(obj)}"


def _arrow_problem(obj: Any, arrow: bool) -> str | None:
    if not arrow:
        return _arrow.NO_ARROW
    try:
        pa = _arrow.pyarrow(f"an Arrow value of type {type(obj).__name__!r}")
    except _arrow.PyarrowMissing as exc:
        return str(exc)
    if isinstance(obj, pa.ChunkedArray):  # other exporters may be one-shot: not read again
        return _arrow.NOT_A_TABLE.format(type(obj).__name__, "a stream of one column")
    return None


def _key_problem(key: Any, refused: Refused | None) -> str | None:
    if isinstance(key, tuple):
        return None  # its items are walked like any tuple's
    if (
        isinstance(key, bytes | str | int | float)
        or key is None
        or numpy_kind(key)
        or type(key) in _user_types.BY_TYPE
        or _everyday(key)
    ):
        return _leaf_problem(key, refused)
    return f"a dict key of type {type(key).__name__!r}; {KEYS}"


def _at(path: list[str], why: str) -> str:
    """``why``, preceded by where it is (nothing for the value itself)."""
    if not path:
        return why
    if len(path) > 2 * _PATH_SHOWN:
        path = [*path[:_PATH_SHOWN], "...", *path[-_PATH_SHOWN:]]
    return f"at {''.join(path)}: {why}"


def _step(key: Any) -> str:
    return f"[{key}]" if type(key) is int else f"[{shown(key)}]"


def _children(obj: Any) -> Iterator[tuple[Any, Any, bool]]:
    """(key or index, child, is_key) for each key and value of a list, tuple or dict."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield key, key, True
            yield key, value, False
    else:
        yield from ((i, item, False) for i, item in enumerate(obj))


def locate(value: Any, refused: Refused | None = None, *, arrow: bool = True) -> str | None:
    """Where ``value`` holds something the codec cannot carry, and why; None if nowhere.
    ``arrow`` False: Arrow tables are among what it cannot carry.

    ``refused``: the codec's account of one object in ``value`` that cannot travel although
    its type is carried; that object is named with its reason.

    Returns:
        e.g. ``"at ['when']: an object of type 'time'; send value.isoformat()"``.
    """
    if not isinstance(value, list | tuple | dict):
        return _leaf_problem(value, refused, arrow)
    # One entry per container being walked: its children, and the path to it.
    stack: list[tuple[Iterator[tuple[Any, Any, bool]], list[str]]] = [(_children(value), [])]
    on_path = [id(value)]  # the containers being walked, to name one that holds itself
    try:
        while stack:
            children, where = stack[-1]
            element = next(children, None)
            if element is None:
                stack.pop()
                on_path.pop()
                continue
            key, child, is_key = element
            if is_key and not isinstance(child, tuple):
                why = _key_problem(child, refused)
                if why is not None:
                    return _at(where, why)
                continue
            if isinstance(child, list | tuple | dict):
                here = [*where, _step(key)]
                if id(child) in on_path:
                    return _at(here, f"a {type(child).__name__} that contains itself")
                if len(stack) >= MAX_DEPTH:
                    deep = f"lists and dicts nested more than {MAX_DEPTH:,} levels deep"
                    return _at(here, deep)
                stack.append((_children(child), here))
                on_path.append(id(child))
                continue
            why = _leaf_problem(child, refused, arrow)
            if why is not None:
                return _at([*where, _step(key)], why)
    except Exception as exc:  # a container whose iteration itself fails
        where = stack[-1][1] if stack else []
        container = "the value" if not where else "it"
        return _at(where, f"iterating {container} raised {type(exc).__name__}: {exc}")
    return None


def explain(value: Any, exc: Exception, arrow: bool = True) -> str:
    """What is wrong with ``value``, which the codec refused with ``exc``: for a message
    (``arrow`` False: the receiver cannot read Arrow tables)."""
    refused = exc if isinstance(exc, Refused) else None
    try:
        where = locate(value, refused, arrow=arrow)
    except Exception:  # the value defeats even the walk: msgpack's own account will do
        where = None
    if where is None and refused is not None:  # not found again (it changed as we looked)
        where = refused.why
    if where is None:  # msgpack refused something the walk accepts
        where = f"{type(exc).__name__}: {exc} (payloads may hold {CARRIED})"
    return where
