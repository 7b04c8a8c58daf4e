"""Tools that return (or yield) values the codec must refuse or convert, by name.

The values are made in the worker, so a result that cannot be encoded is the worker's to
report: the caller must get a typed error, and the worker must live on.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import numpy as np

from snakepit_trio.worker import Adapter, tool

BIG = 2 << 20  # over the default shm_threshold (1 MiB): takes the shared-memory path


def _nest(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _holds_itself() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


class _BadIter(list):  # type: ignore[type-arg]
    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("iteration is broken")


class _Unknown:
    pass


# Results that travel although they are deep (up to 1,024 levels) and hold large buffers.
DEEP: dict[str, Callable[[], Any]] = {
    "nested_600_with_big_bytes": lambda: _nest(600, b"x" * BIG),
    "nested_600_with_big_array": lambda: _nest(600, np.zeros(BIG, dtype=np.uint8)),
}
# Results that cannot travel.
BAD: dict[str, Callable[[], Any]] = {
    "nested_2000": lambda: _nest(2000, 1),
    "nested_1100_with_big_bytes": lambda: _nest(1100, b"x" * BIG),
    "holds_itself": _holds_itself,
    "huge_int": lambda: {"n": 2**70},
    "object": _Unknown,
    "time": lambda: {"when": datetime.time(12)},
    "set": lambda: {1, 2},
    "object_array": lambda: np.array([object()], dtype=object),
    "structured_array": lambda: np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
    "non_contiguous_memoryview": lambda: memoryview(bytes(range(10)))[::2],
    "bad_key": lambda: {frozenset({1}): 1},
    "broken_iter": lambda: _BadIter([1]),
    "lone_surrogate": lambda: "\ud800",
}

NUMPY_SCALARS: dict[str, Any] = {
    "float32": np.float32(1.5),
    "float64": np.float64(2.5),
    "int64": np.int64(-3),
    "uint8": np.uint8(250),
    "bool_": np.bool_(True),
}


class Payloads(Adapter):
    @tool
    def make(self, name: str) -> Any:
        return {**BAD, **DEEP}[name]()

    @tool
    def make_chunks(self, name: str) -> Iterator[Any]:
        yield 1
        yield {**BAD, **DEEP}[name]()

    @tool
    def numpy_scalars(self) -> dict[str, Any]:
        return dict(NUMPY_SCALARS)

    @tool
    def types_of(self, value: Any) -> Any:
        """The type names of what arrived (a dict's values, or the value itself)."""
        if isinstance(value, dict):
            return {k: type(v).__name__ for k, v in value.items()}
        return type(value).__name__

    @tool
    def reprs(self, value: dict[str, Any]) -> dict[str, str]:
        """What arrived, exactly: the repr of each of a dict's values."""
        return {k: repr(v) for k, v in value.items()}

    @tool
    def echo(self, value: Any = None) -> Any:
        return value

    @tool
    def raw_ext(self, code: int, payload: bytes) -> Any:
        """A result holding an extension as given (msgpack sends ExtType as it is)."""
        return {"v": msgpack.ExtType(code, payload)}

    @tool
    def raw_ext_chunks(self, code: int, payload: bytes) -> Iterator[Any]:
        yield 1
        yield msgpack.ExtType(code, payload)

    @tool
    def add(self, a: int, b: float = 0.0, flag: bool = False) -> list[Any]:
        return [a + b, flag]
