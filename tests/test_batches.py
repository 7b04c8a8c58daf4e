"""Unit (no workers): the BATCH call on both sides: the worker's checks and runners, the
host's encoding of the items and checks of the answer."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest

import snakepit_trio as sp
from snakepit_trio._engine._batches import BatchHandle, check_entries, encode_items, outcomes
from snakepit_trio._shared import _frames as w
from snakepit_trio._shared._codec import encode
from snakepit_trio._tools import ParamSpec, ToolSpec
from snakepit_trio.worker import Adapter, ToolContext, tool
from snakepit_trio.worker._adapter import collect_tools
from snakepit_trio.worker._batch import Packed, problem, refused, runner


class Tools(Adapter):
    @tool
    def double(self, x: int) -> Any:
        if x < 0:
            raise ValueError(f"negative: {x}")
        return object() if x == 99 else 2 * x

    @tool
    async def adouble(self, x: int, ctx: ToolContext) -> int:
        if x < 0:
            raise ValueError(f"negative: {x}")
        return 2 * x

    @tool(streaming=True)
    def count(self, n: int) -> Any:
        yield from range(n)


TOOLS = collect_tools(Tools())


def packed_entries(result: Packed) -> list[Any]:
    return msgpack.unpackb(result.payload)  # type: ignore[no-any-return]


def measure(value: Any, *, what: str) -> int:
    return len(encode(value, what=what, limit=1 << 20))


def run(tool: str, xs: list[int], *, stop: bool, limit: int = 1 << 20) -> list[Any]:
    info = TOOLS[tool]
    ctx = ToolContext(1, None, None)
    calls: list[dict[str, Any]] = [{"x": x} for x in xs]
    if info.context_param:
        for args in calls:
            args[info.context_param] = ctx

    def send(value: Any, *, what: str) -> bytes:
        return encode(value, what=what, limit=limit)

    go = runner(info, calls, ctx, stop=stop, encode=send, measure=measure, limit=limit)
    result = asyncio.run(go()) if info.is_async else go()
    assert all(not args for args in calls), "each item's arguments are dropped after it"
    return packed_entries(result)


@pytest.mark.parametrize("tool", ["double", "adouble"])
def test_items_run_in_order_and_each_error_is_its_items(tool: str) -> None:
    entries = run(tool, [1, -2, 3], stop=False)
    assert entries[0] == [0, 2] and entries[2] == [0, 6]
    kind, name, message, traceback, error_kind = entries[1]
    assert (kind, name, message, error_kind) == (1, "ValueError", "negative: -2", "remote")
    assert "raise ValueError" in traceback
    assert run(tool, [1, -2, 3], stop=True) == entries[:2]


def test_a_value_that_cannot_travel_fails_its_item_alone() -> None:
    entries = run("double", [1, 99, 3], stop=False)
    assert entries[0] == [0, 2] and entries[2] == [0, 6]
    assert entries[1][0] == 1 and entries[1][1] == "SerializationError"


def test_the_item_past_the_payload_limit_ends_the_batch() -> None:
    entries = run("double", [10**15] * 60, stop=False, limit=400)
    assert 1 <= len(entries) < 60
    assert all(e == [0, 2 * 10**15] for e in entries[:-1])
    assert entries[-1][1] == "PayloadTooLarge" and entries[-1][4] == "payload_too_large"
    assert len(msgpack.packb(entries)) <= 400


def test_a_cancelled_sync_batch_stops_between_items() -> None:
    info = TOOLS["double"]
    ctx = ToolContext(1, None, None)
    ctx._cancel()
    go = runner(info, [{"x": 1}], ctx, stop=False, encode=encode, measure=measure, limit=99)
    with pytest.raises(asyncio.CancelledError):
        go()


def test_the_worker_refuses_what_cannot_run_as_a_batch() -> None:
    assert refused(1, TOOLS["double"], "double") is None
    unknown = w.parse_from_worker(refused(1, None, "nope"))
    assert isinstance(unknown, w.Error) and unknown.kind == w.KIND_UNKNOWN_TOOL
    streams = w.parse_from_worker(refused(1, TOOLS["count"], "count"))
    assert isinstance(streams, w.Error) and "streams" in streams.message
    info = TOOLS["double"]
    items: list[Any] = [{"x": 1}, None]
    assert problem(info, items) == "item 1: argument 'x': missing required argument"
    assert items[1] == {}
    assert problem(info, [{"x": 1, "y": 2}]) is not None
    assert problem(info, [5]) == "item 0: expected a dict of keyword arguments, got int"
    assert problem(info, {"x": 1}) == "a batch's arguments must be an array, got dict"
    assert problem(info, [{"x": 1}, {"x": 2}]) is None


SPEC = ToolSpec(name="t", description="", streaming=False, params=(ParamSpec("x", "int", True),))


def test_the_host_encodes_the_items_that_fit_as_one_array() -> None:
    payload, positions, failed = encode_items(
        SPEC, [{"x": 1}, {"y": 2}, {"x": object()}, {"x": 4}], None, 1 << 20
    )
    assert msgpack.unpackb(payload) == [{"x": 1}, {"x": 4}] and positions == [0, 3]
    assert isinstance(failed[1], sp.InvalidArguments)
    assert isinstance(failed[2], sp.InvalidArguments)  # an object is no int
    spec = ToolSpec(
        name="t", description="", streaming=False, params=(ParamSpec("x", "any", True),)
    )
    payload, positions, failed = encode_items(spec, [{"x": object()}, {"x": 2}], None, 1 << 20)
    assert positions == [1] and isinstance(failed[0], sp.SerializationError)
    with pytest.raises(sp.PayloadTooLarge):
        encode_items(spec, [{"x": "y" * 100}] * 5, None, 300)


def test_the_host_checks_the_answer_to_a_batch() -> None:
    assert check_entries([[0, 1], [1, "T", "m", "tb", "remote"]], 2) is None
    assert check_entries([[0, 1], [1, "T", "m", "tb", "remote"]], 3) is None  # stopped
    assert check_entries([[0, 1]], 2) is not None  # cut short, but with no error
    assert check_entries([[0, 1]] * 3, 2) is not None
    assert check_entries([[0]], 1) is not None
    assert check_entries([[3, 1]], 1) is not None
    assert check_entries([[1, "T", "m", "tb", "nope"]], 1) is not None
    assert check_entries("x", 1) is not None
    got = outcomes("t", [[0, 5], [1, "ValueError", "m", "tb", "remote"]], ["t"])
    assert got[0] == (True, 5)
    assert isinstance(got[1][1], sp.RemoteError) and got[1][1].remote_type == "ValueError"


def test_an_answer_that_cannot_be_decoded_is_the_callers_error() -> None:
    handle = BatchHandle("t", b"", 0.0, count=1)
    assert handle.accepts(w.Result(1, b"\xc1", None)) is None
    assert isinstance(handle.decode_error, sp.SerializationError)
    handle = BatchHandle("t", b"", 0.0, count=1)
    assert handle.accepts(w.Result(1, msgpack.packb([[0, 1], [0, 2]]), None)) is not None
    assert "RESULT of batch call 1" in (handle.accepts(w.Result(1, b"\x05", None)) or "")


def test_a_worker_connection_answers_batches() -> None:
    from snakepit_trio.worker._connection import Connection
    from snakepit_trio.worker._runtime import Runtime

    async def main() -> dict[int, Any]:
        runtime = Runtime(TOOLS, capacity=1, max_payload=1 << 20, inline=True)
        conn = Connection(runtime)
        args = msgpack.packb([{"x": 2}, {"x": -1}])
        conn.handle(
            [
                [w.BATCH, 1, "double", args, None, None, 0],
                [w.BATCH, 2, "double", 5],  # malformed, its id readable
                [w.BATCH, 3, "count", msgpack.packb([{"n": 1}]), None, None, 0],
                [w.BATCH, 4, "adouble", msgpack.packb([{"x": 1}, {"y": 1}]), None, None, 1],
                [
                    w.BATCH,
                    5,
                    "adouble",
                    msgpack.packb([{"x": 5}, {"x": -5}, {"x": 6}]),
                    None,
                    2.0,
                    1,
                ],
            ]
        )
        for _ in range(100):
            if len({f[1] for f in conn.outbox if f[0] in (w.RESULT, w.ERROR)}) == 5:
                break
            await asyncio.sleep(0)
        return {f[1]: w.parse_from_worker(f) for f in conn.outbox}

    got = asyncio.run(main())
    first = got[1]
    assert isinstance(first, w.Result)
    entries = msgpack.unpackb(first.result)
    assert len(entries) == 2 and entries[0] == [0, 4] and entries[1][:2] == [1, "ValueError"]
    assert isinstance(got[2], w.Error) and got[2].kind == w.KIND_PROTOCOL
    assert isinstance(got[3], w.Error) and got[3].kind == w.KIND_INVALID_ARGUMENTS
    assert isinstance(got[4], w.Error) and "item 1" in got[4].message
    last = got[5]
    assert isinstance(last, w.Result)
    assert [e[:2] for e in msgpack.unpackb(last.result)] == [[0, 10], [1, "ValueError"]]
