"""End-to-end (real workers, both transports): telemetry events of the pool and of its worker
processes (ctx.emit from tool threads, emit outside calls, spans), crashes and recycling."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

import snakepit_trio as sp
from snakepit_trio.telemetry import Event

TELEMETRY = "tests.adapters.telemetry:Telemetry"
_names = itertools.count()


@contextmanager
def everything() -> Iterator[list[Event]]:
    """Every event of every pool while the block runs (a process-wide handler)."""
    seen: list[Event] = []
    name = f"e2e-{next(_names)}"
    sp.telemetry.attach(name, "*", seen.append)
    try:
        yield seen
    finally:
        sp.telemetry.detach(name)


async def test_calls_and_worker_events_from_threads_and_outside_calls() -> None:
    with everything() as seen, trio.fail_after(60):
        async with (
            sp.telemetry.subscribe(["adapter.loaded", "adapter.load.stop"]) as started,
            sp.open_pool(TELEMETRY, size=2, worker_capacity=2) as pool,
        ):
            for _ in range(4):  # both workers' initialize(), whenever they arrive
                await started.receive()
            assert await pool.execute("sleep", {"seconds": 0.2}) == "slept"
            assert await pool.execute("threads", {"n": 4}) == 40
            await pool.execute("background")
            assert await pool.execute("spanned", {"fail": False}) == "ok"
    stops = {e.metadata["tool"]: e for e in seen if e.name == "call.stop"}
    slept = stops["sleep"].measurements
    assert 0.19 <= slept["run_time"] <= slept["duration"] < 5
    assert slept["queue_wait"] >= 0 and stops["sleep"].metadata["outcome"] == "ok"
    # Every event a tool's threads emitted arrived, tied to its call, before the call ended.
    steps = [i for i, e in enumerate(seen) if e.name == "adapter.step"]
    assert len(steps) == 40
    assert {seen[i].metadata["tool"] for i in steps} == {"threads"}
    assert max(steps) < seen.index(stops["threads"])
    assert sorted((seen[i].measurements["i"], seen[i].measurements["j"]) for i in steps) == [
        (i, j) for i in range(4) for j in range(10)
    ]
    [background] = [e for e in seen if e.name == "adapter.background"]
    assert background.metadata["call_id"] is None and background.metadata["source"] == "thread"
    loaded = [e for e in seen if e.name == "adapter.loaded"]
    assert len(loaded) == 2
    assert len({e.metadata["worker_id"] for e in loaded}) == 2
    [span] = [e for e in seen if e.name == "adapter.prep.stop"]
    assert span.metadata["stage"] == "tokenize" and span.measurements["duration"] >= 0
    # Worker times are mapped onto the host's clock: within the pool's lifetime.
    assert seen[0].time <= background.time <= seen[-1].time


async def test_a_killed_worker_is_reported_crashed_restarted_and_ready() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(TELEMETRY, size=1) as pool:
            [worker] = pool.workers()
            async with pool.telemetry.subscribe("worker.*") as events:
                os.kill(worker.pid, signal.SIGKILL)
                got = [await events.receive() for _ in range(4)]
            assert await pool.execute("pid") != worker.pid
    crashed, restarted, spawned, ready = got
    assert crashed.name == "worker.crashed"
    assert crashed.metadata["cause"] == "signal" and crashed.metadata["signal"] == signal.SIGKILL
    assert crashed.metadata["pid"] == worker.pid and crashed.measurements["uptime"] > 0
    assert restarted.name == "worker.restarted" and restarted.measurements["backoff"] >= 0
    assert spawned.name == "worker.spawned"
    assert spawned.metadata["start_method"] in ("zygote", "spawn")
    assert ready.name == "worker.ready" and ready.metadata["pid"] != worker.pid
    assert ready.measurements["startup"] > 0


async def test_recycling_is_reported() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(TELEMETRY, size=1, max_requests=3) as pool:
            [first] = pool.workers()
            async with pool.telemetry.subscribe(["worker.recycled", "worker.stopped"]) as events:
                for i in range(3):
                    await pool.execute("infer", {"tokens": i})
                recycled, stopped = await events.receive(), await events.receive()
    assert recycled.metadata == {
        "worker_id": first.id,
        "pid": first.pid,
        "reason": "max_requests",
        "pool": "pool",
    }
    assert stopped.metadata["worker_id"] == first.id and stopped.metadata["reason"] == "recycled"
    assert stopped.measurements["requests"] == 3


async def test_a_worker_sending_a_malformed_event_is_replaced() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(TELEMETRY, size=1) as pool:
            pool.telemetry.attach("any", "call.*", lambda e: None)
            with pytest.raises(sp.WorkerCrashed) as info:
                await pool.execute("rogue_event")
            assert info.value.cause == "protocol"
            assert await pool.execute("infer", {"tokens": 2}) == 2
