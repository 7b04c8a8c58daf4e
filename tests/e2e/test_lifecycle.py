"""End-to-end (real processes): start-up failures, shutdown, process groups and logs."""

from __future__ import annotations

import logging
import os
import signal

import pytest
import trio

import snakepit_trio as sp
from tests.conftest import pid_alive
from tests.helpers import wait_for

ECHO = "tests.adapters.basic:Echo"


@pytest.mark.parametrize(
    ("adapter", "expected"),
    [
        ("tests.adapters.import_error:Anything", "a_module_that_does_not_exist"),
        ("tests.adapters.broken:FailsInitialize", "model weights not found"),
        ("tests.adapters.broken:Missing", "has no attribute 'Missing'"),
        ("tests.adapters.broken:NotAnAdapter", "not a subclass"),
        ("no_such_package.mod:Adapter", "cannot import adapter module 'no_such_package.mod'"),
    ],
)
async def test_adapter_that_cannot_start_raises_from_open_pool(adapter: str, expected: str) -> None:
    with trio.fail_after(30):
        with pytest.raises(sp.WorkerStartError) as info:
            async with sp.open_pool(adapter, size=2):
                raise AssertionError("open_pool must not yield")
    assert expected in info.value.stderr_tail
    assert "exited with code 3" in info.value.reason


async def test_startup_timeout() -> None:
    with trio.fail_after(30):
        with pytest.raises(sp.WorkerStartError, match=r"startup_timeout=0\.01s"):
            async with sp.open_pool(ECHO, size=1, startup_timeout=0.01):
                raise AssertionError("open_pool must not yield")


async def test_invalid_options_are_refused_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"unknown pool option.*'sise'"):
        async with sp.open_pool(ECHO, sise=2):
            pass
    with pytest.raises(ValueError, match=r"package\.module:ClassName"):
        async with sp.open_pool("no_colon_here"):
            pass
    with pytest.raises(ValueError, match="size"):
        async with sp.open_pool(ECHO, size=0):
            pass
    with pytest.raises(ValueError, match="timeout"):
        async with sp.open_pool(ECHO, timeout=-1):
            pass


async def test_exit_drains_in_flight_calls_then_stops_workers() -> None:
    results: list[object] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as outer:
            async with sp.open_pool(ECHO, size=2) as pool:
                pids = [w.pid for w in pool.workers()]

                async def call() -> None:
                    results.append(await pool.execute("sleep", {"seconds": 0.4}))

                for _ in range(2):
                    outer.start_soon(call)
                await wait_for(lambda: pool.stats().in_flight == 2)
            # Leaving the block waited for the two running calls, then stopped the workers
            # (calls still queued get PoolClosed: tests/e2e/test_close.py).
            assert results == ["slept"] * 2
            assert not any(pid_alive(pid) for pid in pids)
            assert pool.stats().crashes == 0


async def test_drain_timeout_bounds_exit_and_late_calls_get_pool_closed() -> None:
    errors: list[BaseException] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as outer:
            async with sp.open_pool(ECHO, size=1, drain_timeout=0.2, shutdown_grace=0.5) as pool:

                async def call() -> None:
                    try:
                        await pool.execute("asleep", {"seconds": 60})
                    except sp.SnakepitError as exc:
                        errors.append(exc)

                outer.start_soon(call)
                await wait_for(lambda: pool.stats().in_flight == 1)
                start = trio.current_time()
            # About drain_timeout + shutdown_grace (0.7 s), not the 60 s call: a generous
            # bound across processes (exact time: pool-layer test).
            assert trio.current_time() - start < 10.0
    assert len(errors) == 1 and isinstance(errors[0], sp.PoolClosed)


async def test_body_exception_propagates_unwrapped_and_workers_stop() -> None:
    with trio.fail_after(30):
        with pytest.raises(KeyError, match="mine"):
            async with sp.open_pool(ECHO, size=1) as pool:
                pids = [w.pid for w in pool.workers()]
                raise KeyError("mine")
    assert not any(pid_alive(pid) for pid in pids)


async def test_cancelled_block_stops_workers_promptly() -> None:
    with trio.fail_after(30):
        with trio.CancelScope() as scope:
            async with sp.open_pool(ECHO, size=2, shutdown_grace=20) as pool:
                pids = [w.pid for w in pool.workers()]
                start = trio.current_time()
                scope.cancel()
                await trio.sleep_forever()
        # SIGTERM is enough: the workers exit long before the 20 s grace period would end.
        assert trio.current_time() - start < 10
    assert not any(pid_alive(pid) for pid in pids)


async def test_grandchildren_die_with_their_worker() -> None:
    with trio.fail_after(30):
        async with sp.open_pool("tests.adapters.broken:Parent", size=1) as pool:
            child = await pool.execute("spawn_child")
            assert pid_alive(child)
            worker = pool.workers()[0]
            os.kill(worker.pid, signal.SIGKILL)  # a crash kills the whole group ...
            await wait_for(lambda: not pid_alive(child))
            await wait_for(lambda: pool.stats().restarts == 1 and pool.stats().workers == 1)
            child2 = await pool.execute("spawn_child")
        assert not pid_alive(child2)  # ... and so does a normal shutdown


async def test_chatty_worker_never_blocks_and_its_output_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="snakepit_trio.worker")
    with trio.fail_after(60):
        async with sp.open_pool("tests.adapters.broken:Chatty", size=1) as pool:
            assert await pool.execute("shout", {"megabytes": 10}) == 10
            worker_id = pool.workers()[0].id
    records = [r for r in caplog.records if r.name == "snakepit_trio.worker"]
    assert len(records) >= 2 * 10 * 1024
    assert {getattr(r, "worker_id", None) for r in records} == {worker_id}
    assert any("stderr" in r.getMessage() for r in records)


async def test_library_is_quiet_by_default(capfd: pytest.CaptureFixture[str]) -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1) as pool:
            await pool.execute("add", {"a": 1})
            os.kill(pool.workers()[0].pid, signal.SIGKILL)
            await wait_for(lambda: pool.stats().restarts == 1 and pool.stats().workers == 1)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
