"""Contract: unary calls, values, every error kind, progress, context and the description."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._shared import _user_types
from tests.contract.conftest import OpenContract

VALUES = [
    None,
    True,
    0,
    -1,
    2**53 + 1,  # beyond a JS double's exact integers
    2**63 - 1,
    -(2**63),
    1.5,
    -0.25,
    "",
    "héllo ✓",
    b"",
    b"\x00\xff bytes",
    [],
    [1, "two", b"3", None, [4.5]],
    {},
    {"nested": {"list": [1, 2, {"k": None}], "bytes": b"x"}},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
async def test_values_round_trip_exactly(contract: OpenContract, value: object) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            back = await pool.execute("echo", {"value": value})
            assert back == value and type(back) is type(value)


@dataclasses.dataclass(frozen=True)
class Point:  # the host's twin of tests/adapters/user_types.py's (code 40, the same fields)
    x: float
    y: float
    label: str = ""


@pytest.fixture
def point_registered() -> Iterator[None]:
    """Point registered here for one test (the Python worker registers its own at import;
    a Node worker passes the extension through unchanged)."""
    sp.register_type(Point, 40, encode=dataclasses.astuple, decode=lambda f: Point(*f))
    yield
    del _user_types.BY_CODE[_user_types.BY_TYPE.pop(Point).code]


EVERYDAY = [
    # Node.js Dates hold milliseconds: the contract's timestamps are whole milliseconds.
    datetime.datetime(2026, 11, 30, 14, 8, 57, 123000, tzinfo=datetime.UTC),
    datetime.datetime(1969, 7, 20, 20, 17, 40, 5000),  # naive: kept to the microsecond
    datetime.date(2000, 2, 29),
    datetime.timedelta(days=-3, seconds=7, microseconds=11),
    decimal.Decimal("-1.10E+400"),
    decimal.Decimal("NaN"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Point(1.5, -2.0, "p"),  # a user's own type (code 40): passed through unchanged
    [datetime.date(1, 1, 1), {"id": uuid.UUID(int=0)}],
]


@pytest.mark.parametrize("value", EVERYDAY, ids=repr)
@pytest.mark.usefixtures("point_registered")
async def test_everyday_values_round_trip(contract: OpenContract, value: object) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            back = await pool.execute("echo", {"value": value})
            if isinstance(value, decimal.Decimal) and value.is_nan():
                assert isinstance(back, decimal.Decimal) and back.is_nan()
            else:
                assert back == value and type(back) is type(value)


async def test_arrays_keep_dtype_and_shape(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            for array in (
                np.arange(12, dtype=np.float64).reshape(3, 4),
                np.arange(5, dtype=np.int32),
                np.array([True, False]),
                np.arange(6, dtype=np.uint8).reshape(2, 3),
                np.float32(1.5) * np.ones((2, 2), dtype=np.float32),
            ):
                back = await pool.execute("echo", {"value": array})
                assert back.dtype == array.dtype and back.shape == array.shape
                assert np.array_equal(back, array)


async def test_arguments_are_checked_against_the_declared_parameters(
    contract: OpenContract,
) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            assert await pool.execute("add", {"a": 2, "b": 40}) == 42
            assert await pool.execute("add", {"a": 2}) == 3  # b's default, the worker's own
            with pytest.raises(sp.InvalidArguments, match="'a'"):
                await pool.execute("add", {"b": 1})
            with pytest.raises(sp.InvalidArguments, match="'c'"):
                await pool.execute("add", {"a": 1, "c": 2})
            with pytest.raises(sp.UnknownTool) as info:
                await pool.execute("ad", {"a": 1})
            assert "add" in info.value.available
            with pytest.raises(sp.InvalidArguments):
                await pool.execute("add", {"a": "one"})
            assert pool.stats().crashes == 0


async def test_the_worker_describes_its_tools(contract: OpenContract, runtime: str) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            tools = {t.name: t for t in pool.tools()}
            assert {"echo", "add", "count", "stall", "host", "emit"} <= set(tools)
            assert tools["count"].streaming and not tools["add"].streaming
            params = {p.name: p for p in tools["add"].params}
            assert params["a"].type == "int" and params["a"].required
            assert not params["b"].required and params["b"].default == 1
            assert tools["echo"].description == "Return the value unchanged"
            [worker] = pool.workers()
            assert worker.runtime == runtime


async def test_a_raising_tool_is_a_remote_error_and_the_worker_lives_on(
    contract: OpenContract,
) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            pid = await pool.execute("pid")
            with pytest.raises(sp.RemoteError) as info:
                await pool.execute("fail", {"message": "bad input 7"})
            assert info.value.remote_type == "ValueError"
            assert info.value.remote_message == "bad input 7"
            assert "fail" in info.value.remote_traceback
            assert await pool.execute("pid") == pid
            assert pool.stats().crashes == 0


async def test_an_unencodable_result_is_a_serialization_error(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            with pytest.raises(sp.SerializationError):
                await pool.execute("unencodable")
            assert await pool.execute("add", {"a": 1}) == 2


async def test_payload_limits_hold_both_ways(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract(max_payload_bytes=100_000) as pool:
            assert await pool.execute("big", {"size": 50_000}) == b"x" * 50_000
            with pytest.raises(sp.PayloadTooLarge) as info:
                await pool.execute("big", {"size": 200_000})  # the worker refuses to send it
            assert info.value.limit == 100_000 and info.value.size > 100_000
            with pytest.raises(sp.PayloadTooLarge):
                await pool.execute("echo", {"value": b"y" * 200_000})  # never sent
            assert await pool.execute("add", {"a": 1}) == 2
            assert pool.stats().crashes == 0


async def test_progress_reaches_the_caller(contract: OpenContract) -> None:
    seen: list[sp.Progress] = []
    with trio.fail_after(60):
        async with contract() as pool:
            assert await pool.execute("steps", {"n": 3}, on_progress=seen.append) == 3
    assert [(p.done, p.total, p.message) for p in seen] == [
        (1, 3, "step 1"),
        (2, 3, "step 2"),
        (3, 3, "step 3"),
    ]


async def test_a_tool_sees_its_call_session_and_deadline(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            plain = await pool.execute("context", timeout=30)
            assert plain["session_id"] is None and isinstance(plain["request_id"], int)
            assert 0 < plain["remaining"] <= 30
            assert (await pool.execute("context"))["remaining"] is None
            async with pool.session("s-1") as session:
                inside = await session.execute("context")
            assert inside["session_id"] == "s-1"


async def test_calls_beyond_capacity_wait_in_order_and_all_finish(contract: OpenContract) -> None:
    results: dict[int, int] = {}
    with trio.fail_after(60):
        async with contract(size=2, worker_capacity=2) as pool:

            async def one(i: int) -> None:
                results[i] = await pool.execute("add", {"a": i, "b": 0})

            async with trio.open_nursery() as nursery:
                for i in range(50):
                    nursery.start_soon(one, i)
    assert results == {i: i for i in range(50)}


async def test_bulk_calls_reach_the_worker_in_batches(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            items = [{"a": i} for i in range(100)] + [{"a": "x"}, {"a": 7}]
            async with pool.map("add", items, chunksize=25, return_exceptions=True) as rs:
                got = [r async for r in rs]
            assert got[:100] == [i + 1 for i in range(100)] and got[101] == 8
            assert isinstance(got[100], sp.InvalidArguments)
            async with pool.map("fail", [{"message": "m"}] * 3, chunksize=3,
                                return_exceptions=True) as rs:  # fmt: skip
                failed = [r async for r in rs]
            assert all(isinstance(e, sp.RemoteError) and e.remote_message == "m" for e in failed)
            both = await pool.execute_batch([("add", {"a": 1}), ("echo", {"value": "v"})])
            assert both == [2, "v"]


async def test_a_map_without_chunksize_sends_quick_items_in_chunks(
    contract: OpenContract,
) -> None:
    """chunksize="auto" sizes chunks from what the worker's RESULTs say they cost."""
    with trio.fail_after(60):
        async with contract() as pool:
            async with pool.map("add", [{"a": i} for i in range(2000)]) as rs:
                assert [r async for r in rs] == [i + 1 for i in range(2000)]
            assert pool.stats().requests < 200
