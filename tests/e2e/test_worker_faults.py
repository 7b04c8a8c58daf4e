"""End-to-end: a failure on the worker's result path ends that call with a typed error only.

Each case runs on the pool's one worker, of capacity 1. The failing call must end (within a
bound) with the error named, and the same worker must then serve the next call: no tool
thread died, no slot was lost, no process was replaced. A stream never loses a chunk
silently: a chunk that cannot be encoded ends it with an error, never with its end.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

import snakepit_trio as sp
from tests.adapters.faults import BUFFER

FAULTS = "tests.adapters.faults:Faults"
BOUND = 15  # seconds a call may take on a loaded machine; a lost call never ends at all


async def serves_on(pool: sp.Pool, pid: int) -> None:
    """The same worker serves sync and async calls after the failure, on its one slot."""
    with trio.fail_after(BOUND):
        assert await pool.execute("echo", {"value": 1}) == 1
        assert await pool.execute("aecho", {"value": 2}) == 2
    [worker] = pool.workers()
    assert worker.pid == pid
    assert pool.stats().crashes == 0


async def unary(tool: str, args: dict[str, Any]) -> BaseException | Any:
    """How the call ended on a fresh worker, after which that worker must serve on."""
    async with sp.open_pool(FAULTS, size=1, worker_capacity=1) as pool:
        [worker] = pool.workers()
        try:
            with trio.fail_after(BOUND):
                outcome = await pool.execute(tool, args)
        except sp.SnakepitError as exc:
            outcome = exc
        await serves_on(pool, worker.pid)
    return outcome


async def streamed(tool: str, args: dict[str, Any]) -> tuple[list[Any], BaseException | None]:
    """The chunks a stream gave and the error it ended with, on a fresh worker, which must
    serve on."""
    chunks: list[Any] = []
    error: BaseException | None = None
    async with sp.open_pool(FAULTS, size=1, worker_capacity=1) as pool:
        [worker] = pool.workers()
        try:
            with trio.fail_after(BOUND):
                async with pool.stream(tool, args) as stream:
                    async for chunk in stream:
                        chunks.append(chunk)
        except sp.SnakepitError as exc:
            error = exc
        await serves_on(pool, worker.pid)
    return chunks, error


@pytest.mark.parametrize("tool", ["raises", "araises"])
async def test_an_exception_whose_str_raises_keyboard_interrupt(tool: str) -> None:
    error = await unary(tool, {"what": "Unprintable"})
    assert isinstance(error, sp.RemoteError)
    assert error.remote_type == "tests.adapters.faults.Unprintable"
    assert error.remote_message == "<unprintable tests.adapters.faults.Unprintable>"
    assert "_raise" in error.remote_traceback  # where it was raised


async def test_an_exception_whose_traceback_cannot_be_formatted_keeps_type_and_message() -> None:
    error = await unary("raises", {"what": "Unformattable"})
    assert isinstance(error, sp.RemoteError)
    assert error.remote_type == "tests.adapters.faults.Unformattable"
    assert error.remote_message == "its notes raise"
    assert error.remote_traceback == "<the traceback could not be formatted: KeyboardInterrupt>"


@pytest.mark.parametrize("tool", ["raises", "araises"])
async def test_when_even_the_error_frame_fails_a_constant_one_ends_the_call(tool: str) -> None:
    error = await unary(tool, {"what": "Unnameable"})
    assert isinstance(error, sp.RemoteError)
    assert error.remote_type == "WorkerError"
    assert "could not be reported" in error.remote_message


async def test_a_message_no_utf8_holds_is_escaped_not_fatal_to_its_batch() -> None:
    error = await unary("raises", {"what": "surrogate"})
    assert isinstance(error, sp.RemoteError)
    assert error.remote_type == "ValueError"
    assert error.remote_message == "a message no UTF-8 can hold: \\ud800"


@pytest.mark.parametrize("tool", ["unencodable", "aunencodable"])
async def test_a_result_whose_encoding_raises_memory_error(tool: str) -> None:
    error = await unary(tool, {})
    assert isinstance(error, sp.SerializationError)
    assert str(error) == (
        f"cannot encode result of {tool!r}: MemoryError: no memory left to encode this value"
    )


def _depth(value: Any) -> tuple[int, Any]:
    depth = 0
    while isinstance(value, list):
        [value] = value
        depth += 1
    return depth, value


async def test_a_deeply_nested_result_holding_a_large_buffer_arrives() -> None:
    # Over the shared-memory threshold, and deeper than the walk that lifts buffers out:
    # it travels inline, as it would below the threshold.
    result = await unary("deep", {"depth": 600})
    assert _depth(result) == (600, b"x" * BUFFER)


@pytest.mark.parametrize("tool", ["gen_unencodable", "agen_unencodable"])
async def test_a_chunk_that_cannot_be_encoded_ends_the_stream_with_an_error(tool: str) -> None:
    chunks, error = await streamed(tool, {})
    assert chunks == [1]  # never 3: nothing after the chunk that failed, and no END
    assert isinstance(error, sp.SerializationError)
    assert str(error) == (
        f"cannot encode chunk of {tool!r}: MemoryError: no memory left to encode this value"
    )


async def test_a_deeply_nested_chunk_holding_a_large_buffer_arrives() -> None:
    chunks, error = await streamed("gen_deep", {"depth": 600})
    assert error is None
    assert [chunks[0], _depth(chunks[1]), chunks[2]] == [1, (600, b"x" * BUFFER), 3]
