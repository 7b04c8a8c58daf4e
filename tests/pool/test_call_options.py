"""Pool layer: the arguments of execute, stream, execute_stream and the session calls are
checked before anything is queued or sent, with one typed line naming the argument.

Table-driven over every argument; each bad call must leave the pool as it was (nothing
submitted, no session made) and the caller's task free of a late wake-up.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import open_fake_pool
from tests.pool.adapters import Tools

NOT_SECONDS: list[tuple[Any, type[Exception]]] = [
    (math.nan, ValueError),
    (np.float32("nan"), ValueError),
    (-math.inf, ValueError),
    (0, ValueError),
    (-1, ValueError),
    (True, TypeError),
    ("5", TypeError),
    ([5], TypeError),
    (1j, TypeError),
]
NOT_FLAGS: list[tuple[Any, type[Exception]]] = [(1, TypeError), ("yes", TypeError)]
NOT_CALLABLE: list[tuple[Any, type[Exception]]] = [(5, TypeError), ("print", TypeError)]
NOT_WINDOWS: list[tuple[Any, type[Exception]]] = [
    (0, ValueError),
    (-1, ValueError),
    (2**31, ValueError),  # wider than the CALL frame's window field allows
    (2**70, ValueError),
    (True, TypeError),
    (16.0, TypeError),
    ("16", TypeError),
    (None, TypeError),
]
NOT_TOOLS: list[tuple[Any, type[Exception]]] = [(5, TypeError), (["echo"], TypeError)]

EXECUTE: dict[str, list[tuple[Any, type[Exception]]]] = {
    "timeout": NOT_SECONDS,
    "idempotent": [*NOT_FLAGS, (None, TypeError)],
    "kill_on_cancel": NOT_FLAGS,
    "on_progress": NOT_CALLABLE,
    "tool": NOT_TOOLS,
    "retry": [(3, TypeError), (sp.RetryPolicy, TypeError), ({"attempts": 3}, TypeError)],
    "breaker": [(5, TypeError), (sp.CircuitBreaker, TypeError), (sp.RetryPolicy(), TypeError)],
}
STREAM: dict[str, list[tuple[Any, type[Exception]]]] = {
    "timeout": NOT_SECONDS,
    "idle_timeout": NOT_SECONDS,
    "window": NOT_WINDOWS,
    "kill_on_cancel": NOT_FLAGS,
    "on_progress": NOT_CALLABLE,
    "tool": NOT_TOOLS,
}


def _assert_named(exc: BaseException, error: type[Exception], name: str, value: Any) -> None:
    text = str(exc)
    assert type(exc) is error, (name, value, exc)
    assert "\n" not in text and len(exc.args) == 1
    assert text.startswith(f"{name} must be"), text


async def _nothing_was_sent(pool: sp.Pool) -> None:
    stats = pool.stats()
    assert stats.requests == 0 and stats.in_flight == 0 and stats.queued == 0
    assert stats.sessions == 0
    # A call that was sent after all would answer now and wake this task in its sleep
    # ("Should never have been rescheduled!"), which is how NaN timeouts used to fail.
    await trio.sleep(1)


@pytest.mark.parametrize("name", EXECUTE)
async def test_execute_checks_its_arguments_before_sending(
    autojump_clock: trio.testing.MockClock, name: str
) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        for value, error in EXECUTE[name]:
            call: dict[str, Any] = {"tool": "sleep", "args": {"seconds": 0.5}, name: value}
            with pytest.raises(Exception) as info:
                await pool.execute(**call)
            _assert_named(info.value, error, name, value)
            await _nothing_was_sent(pool)
            with pytest.raises(error):  # before the session is opened, too
                await pool.execute_in_session("s", **call)
            async with pool.session() as session:
                with pytest.raises(error):
                    await session.execute(**call)
            await _nothing_was_sent(pool)


@pytest.mark.parametrize("name", STREAM)
async def test_stream_checks_its_arguments_before_sending(
    autojump_clock: trio.testing.MockClock, name: str
) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        for value, error in STREAM[name]:
            call: dict[str, Any] = {"tool": "count", "args": {"n": 3}, name: value}
            with pytest.raises(Exception) as info:
                async with pool.stream(**call):
                    raise AssertionError("the stream must not open")  # pragma: no cover
            _assert_named(info.value, error, name, value)
            with pytest.raises(error):
                await pool.execute_stream(**call, callback=print)
            with pytest.raises(error):  # before the session is opened, too
                await pool.execute_in_session_stream("s", **call, callback=print)
            await _nothing_was_sent(pool)


async def test_execute_stream_checks_its_callback_before_sending(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        for callback in (None, 5):
            with pytest.raises(TypeError, match=r"^callback must be a callable"):
                await pool.execute_stream("count", {"n": 3}, callback)
            with pytest.raises(TypeError, match=r"^callback must be a callable"):
                await pool.execute_in_session_stream("s", "count", {"n": 3}, callback)
        await _nothing_was_sent(pool)


SESSION = [
    ("ttl", math.nan, ValueError),
    ("ttl", 0, ValueError),
    ("ttl", True, TypeError),
    ("ttl", "60", TypeError),
    ("affinity", "loose", ValueError),
    ("affinity", 1, TypeError),
    ("metadata", 5, TypeError),
    ("id", "", ValueError),
    ("id", 5, TypeError),
]


async def test_sessions_check_their_arguments(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        for name, value, error in SESSION:
            with pytest.raises(Exception) as info:
                await pool.open_session(**{name: value})
            _assert_named(info.value, error, "session id" if name == "id" else name, value)
            assert pool.list_sessions() == []
        # A NaN ttl used to reach the session reaper's timer and end the pool's nursery.
        await trio.sleep(3600)
        assert await pool.execute("echo", {"value": 1}) == 1


async def test_session_lookups_name_a_bad_id(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        with pytest.raises(TypeError, match=r"^session id must be a str"):
            pool.get_session(["s"])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^session id must be a str"):
            pool.close_session(5)  # type: ignore[arg-type]


async def test_a_nan_timeout_never_wakes_the_caller_later(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        with pytest.raises(ValueError, match="got NaN"):
            await pool.execute("sleep", {"seconds": 0.5}, timeout=math.nan)
        start = trio.current_time()
        await trio.sleep(2)  # the caller's next sleep is its own
        assert trio.current_time() - start == 2
        assert pool.stats().requests == 0


async def test_math_inf_means_no_limit_for_this_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_pool(Tools, size=1, timeout=10) as pool:
        with pytest.raises(sp.RequestTimeout):
            await pool.execute("sleep", {"seconds": 100})
        assert await pool.execute("sleep", {"seconds": 100}, timeout=math.inf) == "slept"
        async with pool.stream("count", {"n": 3}, timeout=math.inf, idle_timeout=math.inf) as s:
            assert [c async for c in s] == [0, 1, 2]


async def test_numpy_numbers_are_accepted_as_arguments(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        start = trio.current_time()
        with pytest.raises(sp.RequestTimeout):
            await pool.execute("sleep", {"seconds": 100}, timeout=np.float32(2.5))
        assert trio.current_time() - start == 2.5
        async with pool.stream("count", {"n": 5}, window=np.int64(2)) as s:
            assert [c async for c in s] == [0, 1, 2, 3, 4]
