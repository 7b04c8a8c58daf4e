"""An adapter whose module registers its own types at import, as the values guide shows: every
worker, spawned afresh or forked from a template (which imported this module), has them.

``Point`` (code 40) is registered in the tests' host too; ``Secret`` (code 41) only here, so a
host that receives one cannot decode it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from snakepit_trio.worker import Adapter, register_type, tool


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str = ""


@dataclasses.dataclass
class Secret:
    value: str


register_type(Point, 40, encode=dataclasses.astuple, decode=lambda fields: Point(*fields))
register_type(Secret, 41, encode=lambda s: s.value, decode=Secret)


class Shapes(Adapter):
    @tool
    def echo(self, value: Any = None) -> Any:
        return value

    @tool
    def moved(self, point: Point, dx: float) -> Point:
        """A new Point: the worker rebuilt the argument as one, and sends one back."""
        return dataclasses.replace(point, x=point.x + dx)

    @tool
    def type_of(self, value: Any) -> str:
        return f"{type(value).__module__}.{type(value).__qualname__}"

    @tool
    def parent(self) -> int:
        return os.getppid()

    @tool
    def secret(self) -> dict[str, Any]:
        return {"s": Secret("only the worker knows this type")}
