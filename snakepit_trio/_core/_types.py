"""The small type vocabulary shared by tool parameters and session variables.

Names: int, float, str, bool, bytes, list, dict, none, ndarray, any; a trailing "?" also
accepts None. bool is not an int here, and ints are accepted where a float is expected.
numpy's bool, integer and floating scalars count as bool, int and float (they travel as such).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any


def is_ndarray(value: Any) -> bool:
    # Checked without importing numpy: the host may not have it installed.
    cls = type(value)
    return cls.__name__ == "ndarray" and cls.__module__.split(".")[0] == "numpy"


def numpy_kind(value: Any) -> str:
    """The dtype kind of a numpy scalar ("b", "i", "u", "f", "c", "M", ...), else ""."""
    # Without importing numpy: if it is not loaded, ``value`` is not one of its scalars.
    np = sys.modules.get("numpy")
    if np is None or not isinstance(value, np.generic):
        return ""
    return str(value.dtype.kind)


def matches(type_name: str, value: Any) -> bool:
    """Whether ``value`` is of the vocabulary type ``type_name`` (unknown names: any)."""
    if type_name.endswith("?"):
        return value is None or matches(type_name[:-1], value)
    match type_name:
        case "int":
            if isinstance(value, int):
                return not isinstance(value, bool)
            return numpy_kind(value) in ("i", "u")
        case "float":
            if isinstance(value, int | float):
                return not isinstance(value, bool)
            return numpy_kind(value) in ("i", "u", "f")
        case "str":
            return isinstance(value, str)
        case "bool":
            return isinstance(value, bool) or numpy_kind(value) == "b"
        case "bytes":
            return isinstance(value, bytes | bytearray | memoryview)
        case "list":
            return isinstance(value, list | tuple)
        case "dict":
            return isinstance(value, Mapping)
        case "none":
            return value is None
        case "ndarray":
            return is_ndarray(value)
        case _:
            return True
