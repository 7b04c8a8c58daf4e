"""Pool layer: what the pool says about threads in workers, on a virtual clock: one warning
for an adapter whose sync tools share threads without declaring ``thread_safe`` (or for sync
function tools without an adapter to declare it), a refusal
for ``profile="thread"`` without it, and what ``pool.workers()`` reports."""

from __future__ import annotations

import logging

import pytest
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import open_fake_pool
from tests.adapters.threads import AsyncOnly, Counted, Undeclared

Clock = trio.testing.MockClock


def thread_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "thread_safe" in r.getMessage()]


async def test_capacity_above_one_on_an_undeclared_adapter_warns_once(
    autojump_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio")
    async with open_fake_pool(
        Undeclared, size=3, worker_capacity=4, restart=sp.RestartPolicy(initial=0.1)
    ) as pool:
        assert await pool.execute("work", {"value": 1}) == 1
    [warning] = thread_warnings(caplog)  # one per pool, not one per worker
    assert "worker_capacity=4" in warning and "sync tools work of adapter" in warning
    assert "does not declare thread_safe = True" in warning
    assert "awork" not in warning  # async tools run on the worker's loop, not in threads


@pytest.mark.parametrize(("adapter", "capacity"), [(Undeclared, 1), (AsyncOnly, 4), (Counted, 4)])
async def test_no_warning_without_threads_to_share_or_with_the_declaration(
    autojump_clock: Clock, caplog: pytest.LogCaptureFixture, adapter: type, capacity: int
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio")
    async with open_fake_pool(adapter, size=1, worker_capacity=capacity):
        pass
    assert thread_warnings(caplog) == []


async def test_sync_functions_sharing_threads_warn_once_and_a_declaring_adapter_covers_them(
    autojump_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="snakepit_trio")
    entries = ["tests.adapters.functions:score", "tests.adapters.functions:ascore"]
    async with open_fake_pool(tools=entries, size=2, worker_capacity=4) as pool:
        assert await pool.execute("score", {"x": 1}) == 1
    [warning] = [r.getMessage() for r in caplog.records if "side by side" in r.getMessage()]
    assert "the sync function tools score then run in threads side by side" in warning
    assert "@tool(exclusive=True) on a function serialises it" in warning
    caplog.clear()
    async with open_fake_pool(Counted, tools=entries, size=1, worker_capacity=4) as pool:
        assert await pool.execute("score", {"x": 2}) == 2
    assert [r for r in caplog.records if "side by side" in r.getMessage()] == []


async def test_the_thread_profile_refuses_an_undeclared_adapter(autojump_clock: Clock) -> None:
    with pytest.raises(sp.WorkerStartError, match="does not declare thread_safe = True"):
        async with open_fake_pool(Undeclared, size=1, worker_capacity=8, profile="thread"):
            raise AssertionError("must not start")  # pragma: no cover


async def test_workers_report_the_gil_and_the_declaration(autojump_clock: Clock) -> None:
    async with open_fake_pool(Counted, size=1, worker_capacity=8, profile="thread") as pool:
        [info] = pool.workers()
        assert info.thread_safe is True and isinstance(info.gil_enabled, bool)
    async with open_fake_pool(Undeclared, size=1) as pool:
        [info] = pool.workers()
        assert info.thread_safe is False
