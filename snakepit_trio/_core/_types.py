"""The small type vocabulary shared by tool parameters and session variables.

Names: int, float, str, bool, bytes, list, dict, none, ndarray, any; a trailing "?" also
accepts None. bool is not an int here, and ints are accepted where a float is expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_ndarray(value: Any) -> bool:
    # Checked without importing numpy: the host may not have it installed.
    cls = type(value)
    return cls.__name__ == "ndarray" and cls.__module__.split(".")[0] == "numpy"


def matches(type_name: str, value: Any) -> bool:
    """Whether ``value`` is of the vocabulary type ``type_name`` (unknown names: any)."""
    if type_name.endswith("?"):
        return value is None or matches(type_name[:-1], value)
    match type_name:
        case "int":
            return isinstance(value, int) and not isinstance(value, bool)
        case "float":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "str":
            return isinstance(value, str)
        case "bool":
            return isinstance(value, bool)
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
