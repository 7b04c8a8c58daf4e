"""Pool layer: telemetry events (the engine's and the workers'), handlers and subscriptions.

In memory (snakepit_trio.testing), on the virtual clock: durations are exact.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.telemetry import Event
from snakepit_trio.testing import faults, open_fake_pool
from tests.adapters.telemetry import Telemetry

Clock = trio.testing.MockClock


@asynccontextmanager
async def recording(pool: sp.Pool, patterns: str | list[str] = "*") -> AsyncIterator[list[Event]]:
    seen: list[Event] = []
    pool.telemetry.attach("recorder", patterns, seen.append)
    try:
        yield seen
    finally:
        pool.telemetry.detach("recorder")


def names(events: list[Event], prefix: str = "") -> list[str]:
    return [e.name for e in events if e.name.startswith(prefix)]


async def test_nothing_attached_means_the_one_flag_is_off(autojump_clock: Clock) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool:
        hub = pool._engine.telemetry
        assert hub.on is False
        await pool.execute("infer", {"tokens": 1})
        pool.telemetry.attach("h", "call.stop", lambda e: None)
        assert hub.on is True and pool.telemetry.handlers == ["h"]
        assert pool.telemetry.detach("h") is True
        assert hub.on is False
        assert pool.telemetry.detach("h") is False
        sp.telemetry.attach("global", "*", lambda e: None)
        try:
            assert hub.on is True
        finally:
            assert sp.telemetry.detach("global") is True
        assert hub.on is False


async def test_a_call_starts_and_stops_with_its_measurements(autojump_clock: Clock) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool, recording(pool, "call.*") as seen:
        assert await pool.execute("asleep", {"seconds": 5}) == "slept"
    start, stop = seen
    assert start.name == "call.start" and stop.name == "call.stop"
    assert start.measurements == {"queue_depth": 0}
    assert start.metadata == {"pool": "fake", "call_id": 1, "tool": "asleep", "session_id": None}
    m = stop.measurements
    assert m["duration"] == 5 and m["run_time"] == 5 and m["queue_wait"] == 0
    assert m["bytes_in"] > 0 and m["bytes_out"] == len(b"\xa6slept")
    assert stop.metadata["outcome"] == "ok" and stop.metadata["worker_id"] == "fake-0"
    assert start.time <= stop.time


async def test_a_failed_call_emits_exception_then_stop(autojump_clock: Clock) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool, recording(pool, "call.*") as seen:
        with pytest.raises(sp.RemoteError):
            await pool.execute("spanned", {"fail": True})
    assert names(seen) == ["call.start", "call.exception", "call.stop"]
    exception, stop = seen[1:]
    assert exception.metadata["error_type"] == "RemoteError"
    assert exception.metadata["outcome"] == stop.metadata["outcome"] == "remote"
    assert exception.metadata["started"] is True
    assert "run_time" not in stop.measurements  # no RESULT: nothing measured it


async def test_outcomes_name_what_the_caller_got(autojump_clock: Clock) -> None:
    async with (
        open_fake_pool(Telemetry, size=1, max_queue=1, queue_timeout=10) as pool,
        recording(pool, "call.stop") as seen,
    ):
        with pytest.raises(sp.RequestTimeout):
            await pool.execute("asleep", {"seconds": 60}, timeout=1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.execute, "asleep", {"seconds": 30})
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(sp.QueueTimeout):
                await pool.execute("asleep", {"seconds": 1})  # waits behind the first
            nursery.start_soon(pool.execute, "asleep", {"seconds": 1})
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(sp.PoolSaturated):
                await pool.execute("asleep", {"seconds": 1})
            nursery.cancel_scope.cancel()
    outcomes = [e.metadata["outcome"] for e in seen]
    assert outcomes == ["timeout", "queue_timeout", "saturated", "cancelled", "cancelled"]
    queue_timeout = seen[1]
    assert "queue_wait" not in queue_timeout.measurements  # it never reached a worker
    assert queue_timeout.measurements["duration"] == 10


async def test_a_handler_attached_mid_call_sees_no_half_call(autojump_clock: Clock) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool, trio.open_nursery() as nursery:
        nursery.start_soon(pool.execute, "asleep", {"seconds": 5})
        await trio.testing.wait_all_tasks_blocked()
        async with recording(pool, "call.*") as seen:
            await pool.execute("infer", {"tokens": 1})
    assert [(e.name, e.metadata["tool"]) for e in seen] == [
        ("call.start", "infer"),
        ("call.stop", "infer"),
    ]


async def test_streams_count_chunks_and_bytes(autojump_clock: Clock) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool, recording(pool, "stream.*") as seen:
        async with pool.stream("count", {"n": 5}) as chunks:
            assert [c async for c in chunks] == [0, 1, 2, 3, 4]
        async with pool.stream("count", {"n": 100}, window=4) as chunks:
            async for c in chunks:
                if c == 2:
                    break
    assert names(seen) == ["stream.start", "stream.stop", "stream.start", "stream.stop"]
    done, left = seen[1], seen[3]
    assert done.metadata["outcome"] == "ok"
    assert done.measurements["chunks"] == 5 and done.measurements["bytes_out"] == 5
    assert left.metadata["outcome"] == "abandoned"
    assert 3 <= left.measurements["chunks"] <= 4


async def test_a_stream_that_fails_reports_its_own_error(autojump_clock: Clock) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool, recording(pool, "stream.*") as seen:
        with pytest.raises(sp.StreamIdleTimeout):
            async with pool.stream("count", {"n": 100}, window=2, idle_timeout=1) as chunks:
                assert await chunks.__anext__() == 0
                faults(pool).hang()
                async for _ in chunks:
                    pass
    assert names(seen) == ["stream.start", "stream.exception", "stream.stop"]
    assert seen[1].metadata["error_type"] == "StreamIdleTimeout"
    assert seen[2].metadata["outcome"] == "idle_timeout"


async def test_worker_events_arrive_under_adapter_with_the_hosts_keys(
    autojump_clock: Clock,
) -> None:
    seen: list[Event] = []
    sp.telemetry.attach("all", "adapter.*", seen.append)  # sees initialize() too
    try:
        async with open_fake_pool(Telemetry, size=1) as pool:
            await pool.execute("infer", {"tokens": 7})
            await pool.execute("ainfer", {"tokens": 8})
            await pool.execute("spanned", {"fail": False})
            with pytest.raises(sp.RemoteError):
                await pool.execute("spanned", {"fail": True})
    finally:
        sp.telemetry.detach("all")
    by_name: dict[str, list[Event]] = {}
    for event in seen:
        by_name.setdefault(event.name, []).append(event)
    [loaded] = by_name["adapter.loaded"]
    assert loaded.measurements == {"seconds": 0.25, "bytes": 1 << 20}
    assert loaded.metadata["call_id"] is None and loaded.metadata["tool"] is None
    assert loaded.metadata["model"] == "small" and loaded.metadata["worker_id"] == "fake-0"
    [load] = by_name["adapter.load.stop"]
    assert load.metadata["model"] == "small" and "duration" in load.measurements
    sync, async_ = by_name["adapter.inference"]
    assert sync.measurements == {"tokens": 7}
    assert sync.metadata["tool"] == "infer" and sync.metadata["call_id"] == 1
    assert sync.metadata["pool"] == "fake"  # the worker's own "pool" is replaced
    assert async_.metadata["tool"] == "ainfer"
    ok, failed = by_name["adapter.prep.stop"]
    assert ok.metadata["stage"] == "tokenize" and ok.metadata["batch"] == 4
    [raised] = by_name["adapter.prep.exception"]
    assert raised.metadata["error_type"] == "ValueError"
    assert seen.index(raised) == seen.index(failed) - 1


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("name", "event name must be dotted words"),
        ("measurement", r"measurements\['tokens'\] must be a number"),
        ("bool", r"measurements\['ok'\] must be a number"),
        ("nan", r"measurements\['v'\] must be a number, not NaN"),
        ("metadata", r"metadata\['items'\] must be a str, a number, a bool or None"),
        ("key", "measurements keys must be str"),
        ("span", r"span attributes\['where'\] must be a str"),
    ],
)
async def test_a_bad_emit_fails_the_call_naming_what_to_change(
    autojump_clock: Clock, kind: str, message: str
) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool:
        with pytest.raises(sp.RemoteError, match=message):
            await pool.execute("bad_emit", {"kind": kind})


async def test_an_event_that_breaks_the_protocol_replaces_the_worker(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool, recording(pool, "worker.*") as seen:
        with pytest.raises(sp.WorkerCrashed) as info:
            await pool.execute("rogue_event")
        assert info.value.cause == "protocol"
        assert await pool.execute("infer", {"tokens": 1}) == 1
    crashed = [e for e in seen if e.name == "worker.crashed"]
    assert crashed[0].metadata["cause"] == "protocol"
    assert crashed[0].metadata["running"] == ["rogue_event"]


async def test_worker_lifecycle_events(autojump_clock: Clock) -> None:
    seen: list[Event] = []
    sp.telemetry.attach("workers", "worker.*", seen.append)
    try:
        async with open_fake_pool(Telemetry, size=1, max_requests=2) as pool:
            async with pool.telemetry.subscribe("worker.stopped") as stopped_events:
                for _ in range(2):
                    await pool.execute("infer", {"tokens": 1})
                first = await stopped_events.receive()  # the recycled one is gone
            assert first.metadata["worker_id"] == "fake-0"
            async with pool.telemetry.subscribe("worker.ready") as ready:
                faults(pool).crash(signal=9)
                await ready.receive()  # its replacement
            await pool.execute("infer", {"tokens": 1})
    finally:
        sp.telemetry.detach("workers")
    assert names(seen)[:2] == ["worker.spawned", "worker.ready"]
    assert seen[0].metadata["start_method"] == "memory"
    recycled = [e for e in seen if e.name == "worker.recycled"]
    assert recycled[0].metadata["reason"] == "max_requests"
    assert recycled[0].metadata["worker_id"] == "fake-0"
    stopped = {
        e.metadata["worker_id"]: e.metadata["reason"] for e in seen if e.name == "worker.stopped"
    }
    assert stopped["fake-0"] == "recycled"
    [crashed] = [e for e in seen if e.name == "worker.crashed"]
    assert crashed.metadata["cause"] == "signal" and crashed.metadata["signal"] == 9
    [restarted] = [e for e in seen if e.name == "worker.restarted"]
    assert restarted.measurements["backoff"] > 0
    assert "closing" in stopped.values()


async def test_session_events(autojump_clock: Clock) -> None:
    seen: list[Event] = []
    async with open_fake_pool(Telemetry, size=2, session_ttl=30) as pool:
        pool.telemetry.attach("sessions", "session.*", seen.append)  # until the pool is gone
        async with pool.session("a") as a:
            await a.execute("infer", {"tokens": 1})
        await pool.open_session("b")
        await trio.sleep(31)  # b expires
        lost = await pool.open_session("c")
        async with pool.telemetry.subscribe("session.lost") as lost_events:
            faults(pool).crash(lost.worker_id)
            await lost_events.receive()
        with pytest.raises(sp.SessionLost):
            await lost.execute("infer", {"tokens": 1})
        await pool.open_session("d")
    got = [(e.name, e.metadata["session_id"], e.metadata.get("reason")) for e in seen]
    assert got == [
        ("session.opened", "a", None),
        ("session.closed", "a", "closed"),
        ("session.opened", "b", None),
        ("session.closed", "b", "expired"),
        ("session.opened", "c", None),
        ("session.lost", "c", got[5][2]),
        ("session.opened", "d", None),
        ("session.closed", "d", "pool_closed"),
    ]
    assert seen[1].measurements == {"lifetime": 0, "calls": 1}
    assert seen[3].measurements["lifetime"] == 30
    assert "exited" in str(got[5][2])


async def test_a_raising_handler_is_detached_and_logged_once(
    autojump_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="snakepit_trio")
    calls: list[str] = []

    def broken(event: Event) -> None:
        calls.append(event.name)
        raise RuntimeError("handler bug")

    async with open_fake_pool(Telemetry, size=1) as pool, recording(pool, "call.stop") as seen:
        pool.telemetry.attach("broken", "call.*", broken)
        for _ in range(3):
            assert await pool.execute("infer", {"tokens": 1}) == 1
        assert pool.telemetry.handlers == ["recorder"]
    assert calls == ["call.start"]
    assert len(seen) == 3  # the others go on
    logged = [r for r in caplog.records if "telemetry handler" in r.getMessage()]
    assert len(logged) == 1
    assert "'broken'" in logged[0].getMessage() and "detached" in logged[0].getMessage()
    assert logged[0].exc_info is not None and "handler bug" in str(logged[0].exc_info[1])


async def test_a_raising_process_wide_handler_is_detached_too(
    autojump_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="snakepit_trio")
    sp.telemetry.attach("broken", "call.start", lambda e: 1 / 0)
    try:
        async with open_fake_pool(Telemetry, size=1) as pool:
            await pool.execute("infer", {"tokens": 1})
            await pool.execute("infer", {"tokens": 1})
            assert pool._engine.telemetry.on is False
    finally:
        assert sp.telemetry.detach("broken") is False  # already detached
    assert len([r for r in caplog.records if "process-wide" in r.getMessage()]) == 1


async def test_a_subscription_drops_and_counts_what_it_has_no_room_for(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool:
        async with pool.telemetry.subscribe("call.stop", buffer=2) as events:
            for i in range(5):
                await pool.execute("infer", {"tokens": i})
            assert events.dropped == 3
            assert pool.stats().events_dropped == 3
            first = await events.receive()
            assert first.metadata["call_id"] == 1
            assert "dropped=3" in repr(events)
        assert pool.telemetry.handlers == []  # the block detached it


async def test_a_pools_subscription_ends_when_the_pool_closes(autojump_clock: Clock) -> None:
    got: list[str] = []
    async with trio.open_nursery() as nursery:
        ready = trio.Event()

        async def read(pool: sp.Pool) -> None:
            async with pool.telemetry.subscribe("worker.*") as events:
                ready.set()
                async for event in events:
                    got.append(event.name)

        async with open_fake_pool(Telemetry, size=1) as pool:
            nursery.start_soon(read, pool)
            await ready.wait()
        # The reader's loop ended by itself, after the last events of the pool.
    assert got == ["worker.stopped"]


async def test_a_process_wide_subscription_sees_every_pool(autojump_clock: Clock) -> None:
    async with sp.telemetry.subscribe("call.stop") as events:
        async with (
            open_fake_pool(Telemetry, size=1, name="one") as one,
            open_fake_pool(Telemetry, size=1, name="two") as two,
        ):
            await one.execute("infer", {"tokens": 1})
            await two.execute("infer", {"tokens": 1})
        assert [(await events.receive()).metadata["pool"] for _ in range(2)] == ["one", "two"]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda t: t.attach("", "*", print), ValueError, "name must be a non-empty str"),
        (lambda t: t.attach(1, "*", print), TypeError, "name must be a non-empty str"),
        (lambda t: t.attach("h", "*", "print"), TypeError, "handler must be a callable"),
        (lambda t: t.attach("h", "call.stpo", print), ValueError, "did you mean 'call.stop'"),
        (lambda t: t.attach("h", [], print), ValueError, "at least one pattern"),
        (lambda t: t.detach(None), TypeError, "name must be a non-empty str"),
    ],
)
async def test_bad_arguments_are_refused_naming_what_to_change(
    autojump_clock: Clock,
    call: Callable[[Any], object],
    error: type[Exception],
    message: str,
) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool:
        with pytest.raises(error, match=message):
            call(pool.telemetry)
        with pytest.raises(error, match=message):
            call(sp.telemetry)
        assert pool._engine.telemetry.on is False


async def test_names_are_unique_per_pool(autojump_clock: Clock) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool:
        pool.telemetry.attach("h", "*", print)
        with pytest.raises(ValueError, match="a handler named 'h' is attached to pool 'fake'"):
            pool.telemetry.attach("h", "*", print)


@pytest.mark.parametrize(
    ("buffer", "error"), [(0, ValueError), (True, TypeError), (1.5, TypeError), (None, TypeError)]
)
async def test_a_subscription_buffer_is_a_whole_number(
    autojump_clock: Clock, buffer: Any, error: type[Exception]
) -> None:
    async with open_fake_pool(Telemetry, size=1) as pool:
        with pytest.raises(error, match="buffer must be a whole number of events >= 1"):
            async with pool.telemetry.subscribe("*", buffer=buffer):
                pass  # pragma: no cover
        with pytest.raises(ValueError, match="selects no event"):
            async with pool.telemetry.subscribe("nothing.*"):
                pass  # pragma: no cover
        assert pool.telemetry.handlers == []


class StartsOnce(Telemetry):
    started = 0

    async def initialize(self) -> None:
        StartsOnce.started += 1
        if StartsOnce.started > 1:
            raise RuntimeError("the model file is gone")
        await super().initialize()


async def test_a_replacement_that_cannot_start_is_reported(autojump_clock: Clock) -> None:
    async with (
        open_fake_pool(StartsOnce, size=1, crash_threshold=None) as pool,
        pool.telemetry.subscribe("worker.start_failed") as failures,
    ):
        faults(pool).crash()
        failed = await failures.receive()
    assert failed.metadata["slot"] == 0
    assert "exited with code 3" in failed.metadata["reason"]
