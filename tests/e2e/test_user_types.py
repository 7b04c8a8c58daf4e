"""End-to-end (real workers, both transports, spawned and forked): a class registered with
``register_type`` in the adapter's module and in the host travels both ways; a type one
side has not registered is a SerializationError that says to register it, and the worker
lives on.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._shared import _user_types

SHAPES = "tests.adapters.user_types:Shapes"


@dataclasses.dataclass(frozen=True)
class Point:  # the host's own twin of the adapter's Point: the same code and fields
    x: float
    y: float
    label: str = ""


@dataclasses.dataclass
class HostOnly:
    n: int


@pytest.fixture(autouse=True)
def _registered() -> Iterator[None]:
    sp.register_type(Point, 40, encode=dataclasses.astuple, decode=lambda f: Point(*f))
    sp.register_type(HostOnly, 42, encode=lambda h: h.n, decode=HostOnly)
    yield
    for cls in (Point, HostOnly):
        del _user_types.BY_CODE[_user_types.BY_TYPE.pop(cls).code]


@pytest.mark.parametrize("start_method", ["spawn", "zygote"])
async def test_a_registered_dataclass_travels_through_a_worker(start_method: str) -> None:
    with trio.fail_after(60):
        async with sp.open_pool(SHAPES, size=1, start_method=start_method) as pool:
            forked = await pool.execute("parent") != os.getpid()  # a template's child
            assert forked is (start_method == "zygote")
            point = Point(1.5, -2.0, "p")
            assert await pool.execute("type_of", {"value": point}) == (
                "tests.adapters.user_types.Point"
            )
            moved = await pool.execute("moved", {"point": point, "dx": 1.0})
            assert type(moved) is Point and moved == Point(2.5, -2.0, "p")
            value = {"points": [point, Point(0, 0)], "keyed": {point: "p"}, "n": 1}
            assert await pool.execute("echo", {"value": value}) == value


async def test_a_type_one_side_has_not_registered_is_refused_with_what_to_do() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(SHAPES, size=1) as pool:
            [worker] = pool.workers()
            with pytest.raises(sp.SerializationError) as to_worker:
                await pool.execute("echo", {"value": [HostOnly(3)]})
            assert str(to_worker.value) == (
                "cannot decode arguments of 'echo': extension code 42 is a registered type's, "
                "and no type is registered with code 42 in this process; register it here too "
                "with snakepit_trio.register_type (in a worker: at import of the adapter's "
                "module; in the host: before calling)"
            )
            with pytest.raises(sp.SerializationError) as from_worker:
                await pool.execute("secret")
            assert str(from_worker.value).startswith(
                "cannot decode result of 'secret': extension code 41 is a registered type's"
            )
            assert [w.pid for w in pool.workers()] == [worker.pid]
            assert pool.stats().crashes == 0
            assert await pool.execute("echo", {"value": Point(1, 2)}) == Point(1, 2)
