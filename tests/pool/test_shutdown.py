"""Pool layer: closing a pool, at exact virtual times (queued calls, drain, its reports,
sessions still open, the pool's repr).

The end-to-end versions, with signals and real processes, are in tests/e2e/test_shutdown.py.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import open_fake_pool
from tests.pool.adapters import EVENTS, Tools

Clock = trio.testing.MockClock


class _Lines(logging.Handler):
    """Log lines of the "snakepit_trio" logger, with the virtual time each was logged at."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[float, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((trio.current_time(), record.levelname, record.getMessage()))


@contextmanager
def pool_log() -> Iterator[_Lines]:
    logger = logging.getLogger("snakepit_trio")
    handler = _Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_leaving_the_block_fails_queued_calls_at_once_and_drains_running_ones(
    autojump_clock: Clock,
) -> None:
    outcomes: list[tuple[str, float, object]] = []

    async def call(pool: sp.Pool, name: str, seconds: float) -> None:
        try:
            result: object = await pool.execute("sleep", {"seconds": seconds})
        except sp.PoolClosed as exc:
            result = exc
        outcomes.append((name, trio.current_time(), result))

    async with trio.open_nursery() as outer:
        async with open_fake_pool(Tools, size=1, prefetch=0, drain_timeout=60) as pool:
            outer.start_soon(call, pool, "running", 3)
            await trio.testing.wait_all_tasks_blocked()
            outer.start_soon(call, pool, "queued-1", 1)
            outer.start_soon(call, pool, "queued-2", 1)
            await trio.testing.wait_all_tasks_blocked()
            assert (pool.stats().in_flight, pool.stats().queued) == (1, 2)
            start = trio.current_time()
        # The running call finished; the queued ones never started.
        assert trio.current_time() == start + 3
    got = {name: (at - start, result) for name, at, result in outcomes}
    assert got["running"] == (3.0, "slept")
    for name in ("queued-1", "queued-2"):
        at, error = got[name]
        assert at == 0.0 and isinstance(error, sp.PoolClosed)


async def test_closing_reports_what_it_waits_for(autojump_clock: Clock) -> None:
    async def call(pool: sp.Pool, tool: str) -> None:
        with pytest.raises(sp.PoolClosed):
            await pool.execute(tool, {"seconds": 30})

    with pool_log() as log:
        async with (
            trio.open_nursery() as outer,
            open_fake_pool(Tools, size=2, prefetch=0, drain_timeout=12, shutdown_grace=1) as pool,
        ):
            for tool in ("stubborn", "stubborn", "sleep"):  # the third one waits
                outer.start_soon(call, pool, tool)
                await trio.testing.wait_all_tasks_blocked()
            assert (pool.stats().in_flight, pool.stats().queued) == (2, 1)
            start = trio.current_time()
    pid = os.getpid()  # the fake workers' pid

    def waiting(ago: int) -> str:
        return (
            f"2 running call(s) on fake-0 (pid {pid}): stubborn (the oldest sent {ago}s ago); "
            f"fake-1 (pid {pid}): stubborn (the oldest sent {ago}s ago)"
        )

    lines = [(t - start, lv, text) for t, lv, text in log.lines if text.startswith("pool 'fake'")]
    assert lines == [
        (0.0, "INFO", "pool 'fake' closing: 1 queued call(s) got PoolClosed"),
        (0.0, "INFO", f"pool 'fake' closing: waiting up to 12s (drain_timeout) for {waiting(0)}"),
        (5.0, "INFO", f"pool 'fake' closing: still waiting after 5s (7s left) for {waiting(5)}"),
        (
            10.0,
            "INFO",
            f"pool 'fake' closing: still waiting after 10s (2s left) for {waiting(10)}",
        ),
        (
            12.0,
            "WARNING",
            f"pool 'fake': drain_timeout=12s ran out; {waiting(12)} get PoolClosed as their "
            "workers stop",
        ),
        (
            12.0,
            "INFO",
            "pool 'fake' closing: stopping 2 worker(s) (SIGTERM, then SIGKILL after "
            "shutdown_grace=1s)",
        ),
    ]


async def test_a_call_abandoned_by_its_caller_is_named_as_such(autojump_clock: Clock) -> None:
    with pool_log() as log:
        async with open_fake_pool(Tools, size=1, drain_timeout=1, shutdown_grace=1) as pool:
            with pytest.raises(sp.RequestTimeout):
                await pool.execute("stubborn", {"seconds": 30}, timeout=0.5)
    assert any(
        "1 running call(s) on fake-0" in text and "stubborn (its caller is gone)" in text
        for _, _, text in log.lines
    )


async def test_sessions_still_open_end_in_their_workers_after_the_drain(
    autojump_clock: Clock,
) -> None:
    EVENTS.clear()
    async with trio.open_nursery() as outer:
        async with open_fake_pool(Tools, size=2, drain_timeout=60) as pool:
            first = await pool.open_session("first")
            await pool.open_session("second")
            closed = await pool.open_session("closed")
            closed.close()
            closed_at = trio.current_time()
            assert {i.worker_id for i in pool.list_sessions()} == {"fake-0", "fake-1"}
            outer.start_soon(first.execute, "sleep", {"seconds": 2})
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
        assert pool.list_sessions() == []
        assert pool.close_session("first") is False  # already ended, by the pool
    ended = {
        session: EVENTS[i + 1][1]  # each "session end" is followed by its "session end at"
        for i, (kind, session) in enumerate(EVENTS)
        if kind == "session end"
    }
    # The open ones ended once the call running in "first" had finished, before the workers
    # stopped; "closed" ended when it was closed, and only then.
    assert ended == {"closed": closed_at, "first": start + 2, "second": start + 2}
    assert len([e for e in EVENTS if e[0] == "session end"]) == 3


async def test_repr_says_open_then_closing_then_closed(autojump_clock: Clock) -> None:
    async with (
        trio.open_nursery() as outer,
        open_fake_pool(Tools, size=2, name="reprs", drain_timeout=60) as pool,
    ):
        text = repr(pool)
        assert text.startswith("<Pool 'reprs' open ")
        assert "workers=2/2" in text and "adapter='tests.pool.adapters:Tools'" in text
        outer.start_soon(pool.execute, "sleep", {"seconds": 5})
        await trio.testing.wait_all_tasks_blocked()

        async def look_while_draining() -> None:
            await trio.sleep(1)
            assert repr(pool).startswith("<Pool 'reprs' closing ")

        outer.start_soon(look_while_draining)
    assert repr(pool).startswith("<Pool 'reprs' closed ")
    assert "workers=0/2" in repr(pool)
