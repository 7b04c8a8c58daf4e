"""End-to-end (real processes, both transports): what leaving an ``open_pool`` block does
to calls still queued and to sessions still open, and cancelling it while it drains.

The calls that keep a drain busy end only when the test creates a file, so every wait here
is on an event; the exact times are in tests/pool/test_shutdown.py.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

import snakepit_trio as sp
from tests.adapters.closing import SESSION_END_DIR
from tests.conftest import pid_alive
from tests.helpers import wait_for

ADAPTER = "tests.adapters.closing:Closing"


@contextmanager
def on_pool_log(text: str) -> Iterator[trio.Event]:
    """An event set when the "snakepit_trio" logger logs a line containing ``text``."""
    seen = trio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if text in record.getMessage():
                seen.set()

    logger, handler = logging.getLogger("snakepit_trio"), Watch(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_leaving_the_block_fails_queued_calls_at_once_and_lets_running_ones_finish(
    tmp_path: Path,
) -> None:
    release, started = tmp_path / "release", tmp_path / "started"
    results: list[object] = []
    closed: list[sp.PoolClosed] = []

    async def call(pool: sp.Pool, args: dict[str, str]) -> None:
        try:
            results.append(await pool.execute("wait_for_file", args))
        except sp.PoolClosed as exc:
            closed.append(exc)

    async def release_once_the_queued_calls_failed() -> None:
        await wait_for(lambda: len(closed) == 2, timeout=30)
        assert results == []  # the running call is still running
        release.touch()

    with trio.fail_after(30):  # drain_timeout is 60: it must not be what ends the drain
        async with trio.open_nursery() as outer:
            async with sp.open_pool(ADAPTER, size=1, prefetch=0, drain_timeout=60) as pool:
                [pid] = [w.pid for w in pool.workers()]
                outer.start_soon(call, pool, {"path": str(release), "started": str(started)})
                await wait_for(started.exists)
                for i in range(2):  # they would wait for files nobody creates
                    outer.start_soon(call, pool, {"path": str(tmp_path / f"never-{i}")})
                await wait_for(lambda: pool.stats().queued == 2)
                outer.start_soon(release_once_the_queued_calls_failed)
            assert results == ["released"]
            assert not pid_alive(pid)
    assert len(closed) == 2


async def test_closing_the_pool_ends_open_sessions_in_their_workers(tmp_path: Path) -> None:
    env = {SESSION_END_DIR: str(tmp_path)}
    with trio.fail_after(30):
        async with sp.open_pool(ADAPTER, size=2, env=env) as pool:
            first = await pool.open_session("first")
            second = await pool.open_session("second")
            pids = {"first": await first.execute("pid"), "second": await second.execute("pid")}
            assert len(set(pids.values())) == 2  # one session on each worker
            async with pool.session("closed-in-the-block") as closed:
                pids["closed-in-the-block"] = await closed.execute("pid")
            await wait_for((tmp_path / "closed-in-the-block").exists)
        # Leaving the block ended the two still open, in the workers that held them.
    ended: dict[str, int] = {}
    for name in os.listdir(tmp_path):
        ended[name] = int(await trio.Path(tmp_path, name).read_text())
    assert ended == pids
    assert not any(pid_alive(pid) for pid in pids.values())


async def test_cancelling_the_pool_while_it_drains_stops_the_wait_at_once(tmp_path: Path) -> None:
    started = tmp_path / "started"

    async def abandoned_call(pool: sp.Pool) -> None:
        # The worker runs it on after its caller gave up, so the drain waits for it.
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    pool.execute,
                    "wait_for_file",
                    {"path": str(tmp_path / "never"), "started": str(started)},
                )
                await wait_for(started.exists)
                scope.cancel()

    async def cancel_once_draining(scope: trio.CancelScope, draining: trio.Event) -> None:
        await draining.wait()
        scope.cancel()

    with on_pool_log("closing: waiting up to 60s") as draining, trio.fail_after(30):
        async with trio.open_nursery() as outer:
            with trio.CancelScope() as scope:
                async with sp.open_pool(
                    ADAPTER, size=1, drain_timeout=60, shutdown_grace=1
                ) as pool:
                    [pid] = [w.pid for w in pool.workers()]
                    await abandoned_call(pool)
                    outer.start_soon(cancel_once_draining, scope, draining)
            # Cancelled while it drained: the worker's supervisor stopped it at once, which
            # ended the drain (not drain_timeout=60 later).
            assert scope.cancelled_caught
    assert not pid_alive(pid)
