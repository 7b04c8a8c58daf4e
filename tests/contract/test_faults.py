"""Contract: cancellation, deadlines, crashes, heartbeats and memory reports."""

from __future__ import annotations

import pytest
import trio

import snakepit_trio as sp
from tests.contract.conftest import OpenContract


async def test_cancelling_a_call_stops_the_tool_and_frees_its_slot(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            pid = await pool.execute("pid")
            with trio.move_on_after(0.2) as scope:
                await pool.execute("sleep", {"seconds": 3600})
            assert scope.cancelled_caught
            # One slot: this runs only once the cancelled tool has really stopped.
            assert await pool.execute("add", {"a": 1}, timeout=20) == 2
            assert await pool.execute("pid") == pid and pool.stats().crashes == 0


async def test_a_timeout_is_a_request_timeout(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            with pytest.raises(sp.RequestTimeout):
                await pool.execute("sleep", {"seconds": 3600}, timeout=0.3)
            assert await pool.execute("add", {"a": 1}, timeout=20) == 2


async def test_calls_waiting_on_the_worker_are_given_back_when_cancelled(
    contract: OpenContract,
) -> None:
    """Prefetched calls wait in the worker for a slot; cancelling them there answers at once
    (never started) and the running call is unaffected."""
    with trio.fail_after(60):
        async with contract(prefetch_budget=10.0) as pool:
            async with trio.open_nursery() as nursery:
                long = trio.Event()

                async def hold() -> None:
                    await pool.execute("sleep", {"seconds": 1.0})
                    long.set()

                nursery.start_soon(hold)
                with trio.move_on_after(0.3):
                    async with trio.open_nursery() as waiting:
                        for _ in range(5):
                            waiting.start_soon(pool.execute, "add", {"a": 1})
                await long.wait()
            assert await pool.execute("add", {"a": 41}) == 42
            assert pool.stats().crashes == 0


@pytest.mark.owns_processes(
    "a crash is cause 'disconnected'; the slot reconnects, nothing is replaced"
)
async def test_a_crashed_worker_is_reported_and_replaced(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            pid = await pool.execute("pid")
            with pytest.raises(sp.WorkerCrashed) as info:
                await pool.execute("crash", {"code": 3})
            assert info.value.pid == pid and info.value.exit_code == 3
            assert info.value.cause == "exit" and info.value.running == ("crash",)
            assert await pool.execute("pid") != pid  # a fresh worker took its place
            assert pool.stats().crashes == 1


@pytest.mark.owns_processes("no fresh worker to retry on; the slot waits for its endpoint")
async def test_an_idempotent_call_is_retried_on_a_fresh_worker(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract() as pool:
            first = await pool.execute("pid")
            with pytest.raises(sp.WorkerCrashed):
                await pool.execute("crash", {"code": 1}, idempotent=True)  # crashes each time
            assert pool.stats().crashes == 2  # the call and its one retry
            assert await pool.execute("pid") != first


@pytest.mark.owns_processes("an unresponsive worker is disconnected, not killed and replaced")
async def test_a_worker_whose_event_loop_is_blocked_is_replaced(contract: OpenContract) -> None:
    with trio.fail_after(60):
        async with contract(heartbeat_interval=0.2, heartbeat_timeout=1.5) as pool:
            pid = await pool.execute("pid")
            with pytest.raises(sp.WorkerCrashed) as info:
                await pool.execute("block", {"seconds": 30})
            assert info.value.cause == "unresponsive" and info.value.pid == pid
            assert await pool.execute("pid") != pid


@pytest.mark.owns_processes("recycling reconnects to the same process, which keeps its memory")
async def test_heartbeats_report_memory_and_a_growing_worker_is_recycled(
    contract: OpenContract,
) -> None:
    with trio.fail_after(90):
        async with contract(heartbeat_interval=0.2) as pool:
            pid = await pool.execute("pid")
            [worker] = pool.workers()
            assert worker.rss is not None and worker.rss > 1_000_000
            limit_mb = worker.rss / 2**20 + 60
        async with contract(max_memory_mb=limit_mb, heartbeat_interval=0.2) as pool:
            pid = await pool.execute("pid")
            for _ in range(6):
                await pool.execute("grow", {"megabytes": 30})
            assert pool.stats().recycles >= 1 and pool.stats().crashes == 0
            assert await pool.execute("pid") != pid
