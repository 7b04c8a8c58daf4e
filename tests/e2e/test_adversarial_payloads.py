"""End-to-end (real workers): values that cannot travel give a typed error at the call site
(arguments, on the host) or from the worker (results and chunks), and the worker lives on;
numpy scalars travel as plain numbers both ways.
"""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import pytest
import trio

import snakepit_trio as sp
from tests.adapters.payloads import BAD, BIG, DEEP, NUMPY_SCALARS

TRANSPORT_AGNOSTIC = True  # the codec is the same on both transports (see conftest.py)

PAYLOADS = "tests.adapters.payloads:Payloads"


def _nest(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _depth_and_leaf(value: Any) -> tuple[int, Any]:
    depth = 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    return depth, value


async def test_results_that_cannot_travel_give_a_typed_error_and_the_worker_lives() -> None:
    # A result whose encoding raised something other than SerializationError (a
    # RecursionError, a BufferError, the value's own __iter__) used to leave the call
    # unanswered for ever.
    with trio.fail_after(120):
        async with sp.open_pool(PAYLOADS, size=1, registry=False) as pool:
            [worker] = pool.workers()
            for name in BAD:
                with pytest.raises(sp.SerializationError, match="cannot encode result of 'make'"):
                    await pool.execute("make", {"name": name})
                chunks: list[Any] = []
                with pytest.raises(sp.SerializationError, match="cannot encode chunk"):
                    async with pool.stream("make_chunks", {"name": name}) as stream:
                        async for chunk in stream:
                            chunks.append(chunk)
                assert chunks == [1], name
            assert [w.pid for w in pool.workers()] == [worker.pid]
            assert pool.stats().crashes == 0
            assert await pool.execute("echo", {"value": "still here"}) == "still here"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (_nest(1100, b"x" * BIG), "nested more than 1,024 levels deep"),
        ({"when": datetime.time(12)}, "at ['value']['when']: an object of type 'time'"),
        ({frozenset(): 1}, "a dict key of type 'frozenset'; dict keys may be str, int"),
        (memoryview(bytes(BIG))[::2], "not C-contiguous"),
        (np.zeros(4, dtype=[("a", "<i4")]), "structured numpy arrays cannot travel"),
        (2**64, "out of msgpack's 64-bit range"),
    ],
)
async def test_arguments_that_cannot_travel_are_refused_before_sending(
    value: Any, message: str
) -> None:
    with trio.fail_after(60):
        async with sp.open_pool(PAYLOADS, size=1, registry=False) as pool:
            with pytest.raises(sp.SerializationError) as info:
                await pool.execute("echo", {"value": value})
            assert str(info.value).startswith("cannot encode arguments of 'echo': ")
            assert message in str(info.value)
            assert pool.stats().requests == 0


async def test_deep_arguments_and_results_with_large_buffers_travel() -> None:
    # 600 levels over a buffer that goes through shared memory: the README promises
    # refusal only beyond 1,024 levels (this used to raise RecursionError at the call site).
    with trio.fail_after(120):
        async with sp.open_pool(PAYLOADS, size=1, registry=False) as pool:
            for leaf in (b"x" * BIG, np.arange(BIG, dtype=np.uint8)):
                back = await pool.execute("echo", {"value": _nest(600, leaf)})
                depth, got = _depth_and_leaf(back)
                assert depth == 600
                assert np.array_equal(np.frombuffer(got, np.uint8), np.frombuffer(leaf, np.uint8))
            for name in DEEP:
                depth, got = _depth_and_leaf(await pool.execute("make", {"name": name}))
                assert depth == 600
                assert bytes(got) == (b"x" * BIG if name.endswith("bytes") else bytes(BIG))
                async with pool.stream("make_chunks", {"name": name}) as stream:
                    chunks = [chunk async for chunk in stream]
                assert chunks[0] == 1 and _depth_and_leaf(chunks[1])[0] == 600


async def test_numpy_scalars_travel_as_plain_numbers_both_ways() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(PAYLOADS, size=1, registry=False) as pool:
            result = await pool.execute("numpy_scalars")
            assert result == {
                "float32": 1.5,
                "float64": 2.5,
                "int64": -3,
                "uint8": 250,
                "bool_": True,
            }
            assert {k: type(v) for k, v in result.items()} == {
                "float32": float,
                "float64": float,
                "int64": int,
                "uint8": int,
                "bool_": bool,
            }
            arrived = await pool.execute("types_of", {"value": dict(NUMPY_SCALARS)})
            assert arrived == {
                "float32": "float",
                "float64": "float",
                "int64": "int",
                "uint8": "int",
                "bool_": "bool",
            }
            # A tool's typed parameters take numpy numbers as the plain ones they become.
            total = await pool.execute(
                "add", {"a": np.int64(2), "b": np.float32(0.5), "flag": np.bool_(True)}
            )
            assert total == [2.5, True]
            with pytest.raises(sp.InvalidArguments, match="expected int"):
                await pool.execute("add", {"a": np.float32(2.0)})
