"""Pool layer: in snakepit_trio.testing (tools run inline, on the worker's loop), a failure on
the result path, SystemExit and KeyboardInterrupt end that call only, as in a process."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import open_fake_pool

FAULTS = "tests.adapters.faults:Faults"


async def outcome(tool: str, args: dict[str, Any]) -> tuple[list[Any], BaseException | None]:
    """The chunks and the error of one call on a fresh worker of capacity 1, which must then
    serve sync and async calls (its one slot was freed, nothing crashed)."""
    chunks: list[Any] = []
    error: BaseException | None = None
    async with open_fake_pool(FAULTS, size=1, worker_capacity=1) as pool:
        try:
            with trio.fail_after(60):  # virtual time: a lost call never ends at all
                if tool.startswith(("gen_", "agen_")):
                    async with pool.stream(tool, args) as stream:
                        async for chunk in stream:
                            chunks.append(chunk)
                else:
                    await pool.execute(tool, args)
        except sp.SnakepitError as exc:
            error = exc
        with trio.fail_after(60):
            assert await pool.execute("echo", {"value": 1}) == 1
            assert await pool.execute("aecho", {"value": 2}) == 2
        assert pool.stats().crashes == 0
    return chunks, error


@pytest.mark.parametrize("what", ["SystemExit", "KeyboardInterrupt"])
@pytest.mark.parametrize("tool", ["raises", "araises", "gen_raises", "agen_raises"])
async def test_system_exit_and_keyboard_interrupt_fail_the_call_only(
    autojump_clock: trio.testing.MockClock, tool: str, what: str
) -> None:
    chunks, error = await outcome(tool, {"what": what})
    assert isinstance(error, sp.RemoteError)
    assert error.remote_type == what
    assert chunks == ([1] if "gen_" in tool else [])


@pytest.mark.parametrize(
    ("what", "remote_type"),
    [
        ("Unprintable", "tests.adapters.faults.Unprintable"),
        ("Unformattable", "tests.adapters.faults.Unformattable"),
        ("Unnameable", "WorkerError"),
    ],
)
@pytest.mark.parametrize("tool", ["raises", "araises"])
async def test_an_error_that_cannot_be_reported_in_full_still_ends_the_call(
    autojump_clock: trio.testing.MockClock, tool: str, what: str, remote_type: str
) -> None:
    _, error = await outcome(tool, {"what": what})
    assert isinstance(error, sp.RemoteError)
    assert error.remote_type == remote_type


@pytest.mark.parametrize(
    "tool", ["unencodable", "aunencodable", "gen_unencodable", "agen_unencodable"]
)
async def test_a_value_whose_encoding_raises_memory_error(
    autojump_clock: trio.testing.MockClock, tool: str
) -> None:
    chunks, error = await outcome(tool, {})
    assert isinstance(error, sp.SerializationError)
    assert "MemoryError: no memory left to encode this value" in str(error)
    assert chunks == ([1] if "gen_" in tool else [])  # no chunk lost silently, no END
