"""End-to-end (real worker processes, real gRPC): execute and its failure semantics.

Every wait is bounded by trio.fail_after; the autouse fixture fails any test that leaks a
process.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import trio
import trio.testing

import snakepit_trio as sp
from tests.helpers import wait_for

ECHO = "tests.adapters.basic:Echo"


async def test_execute_returns_results_from_real_workers() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=2) as pool:
            assert await pool.execute("add", {"a": 2, "b": 40}) == 42
            assert await pool.execute("add", {"a": 1}) == 2
            assert await pool.execute("aecho", {"value": [1, "x", b"y", {"k": None}]}) == [
                1,
                "x",
                b"y",
                {"k": None},
            ]
            pids = {w.pid for w in pool.workers()}
            assert len(pids) == 2 and os.getpid() not in pids


async def test_numpy_arrays_travel_both_ways() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1) as pool:
            array = np.arange(100_000, dtype=np.float64).reshape(1000, 100)
            back = await pool.execute("echo", {"value": {"x": array}})
            assert np.array_equal(back["x"], array) and back["x"].dtype == array.dtype


async def test_tool_exception_becomes_remote_error_with_traceback() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1) as pool:
            with pytest.raises(sp.RemoteError) as info:
                await pool.execute("fail", {"message": "bad input 7"})
            err = info.value
            assert err.remote_type == "ValueError"
            assert err.remote_message == "bad input 7"
            assert "raise ValueError(message)" in err.remote_traceback
            # The worker is not harmed by an application error.
            assert await pool.execute("add", {"a": 1}) == 2
            assert pool.stats().crashes == 0


async def test_unknown_tool_and_invalid_arguments_fail_before_dispatch() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1) as pool:
            with pytest.raises(sp.UnknownTool) as unknown:
                await pool.execute("ad", {"a": 1})
            assert "add" in unknown.value.available
            with pytest.raises(sp.InvalidArguments) as missing:
                await pool.execute("add", {})
            assert missing.value.param == "a"
            assert "missing" in missing.value.reason
            with pytest.raises(sp.InvalidArguments) as extra:
                await pool.execute("add", {"a": 1, "c": 2})
            assert extra.value.param == "c"
            with pytest.raises(sp.InvalidArguments) as typed:
                await pool.execute("add", {"a": "one"})
            assert typed.value.param == "a" and "expected int" in typed.value.reason
            with pytest.raises(sp.InvalidArguments):
                await pool.execute("add", [1, 2])  # type: ignore[arg-type]
            assert pool.stats().requests == 0  # nothing reached the dispatcher


async def test_unencodable_arguments_raise_serialization_error_at_call_site() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1) as pool:
            with pytest.raises(sp.SerializationError, match="object"):
                await pool.execute("echo", {"value": object()})
            with pytest.raises(sp.SerializationError, match="64-bit"):
                await pool.execute("echo", {"value": 2**70})
            assert pool.stats().requests == 0
            # An unencodable *result* is reported by the worker, which stays alive.
            with pytest.raises(sp.SerializationError, match="result of 'unencodable'"):
                await pool.execute("unencodable")
            assert await pool.execute("add", {"a": 1}) == 2


async def test_payload_limits_name_the_option() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, max_payload_bytes=1000) as pool:
            with pytest.raises(sp.PayloadTooLarge) as args_err:
                await pool.execute("echo", {"value": b"x" * 2000})
            assert args_err.value.option == "max_payload_bytes"
            assert args_err.value.limit == 1000 and args_err.value.size > 2000
            with pytest.raises(sp.PayloadTooLarge) as result_err:
                await pool.execute("big", {"size": 5000})
            assert result_err.value.limit == 1000
            assert "max_payload_bytes" in str(result_err.value)
            assert await pool.execute("big", {"size": 10}) == b"x" * 10


async def test_worker_killed_mid_call_raises_worker_crashed_promptly() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=2) as pool:
            pids_before = {w.pid for w in pool.workers()}
            outcome: dict[str, BaseException] = {}

            async def victim() -> None:
                try:
                    await pool.execute("sleep", {"seconds": 20})
                except sp.WorkerCrashed as exc:
                    outcome["error"] = exc
                    outcome["at"] = trio.current_time()  # type: ignore[assignment]

            async with trio.open_nursery() as nursery:
                nursery.start_soon(victim)
                await wait_for(lambda: pool.stats().in_flight > 0)
                busy = next(w for w in pool.workers() if w.in_flight)
                killed_at = trio.current_time()
                os.kill(busy.pid, signal.SIGKILL)
            err = outcome["error"]
            assert isinstance(err, sp.WorkerCrashed)
            assert err.pid == busy.pid and err.worker_id == busy.id
            assert err.signal == signal.SIGKILL and err.exit_code is None
            # Noticed promptly, not when the 20 s tool would have ended (the pool's promise is
            # well under a second; exact time: pool-layer test).
            assert outcome["at"] - killed_at < 5.0  # type: ignore[operator]
            # The pool restores its size with a fresh process.
            await wait_for(lambda: pool.stats().workers == 2)
            assert busy.pid not in {w.pid for w in pool.workers()}
            assert len(pids_before & {w.pid for w in pool.workers()}) == 1
            stats = pool.stats()
            assert stats.crashes == 1 and stats.restarts == 1
            assert await pool.execute("add", {"a": 1}) == 2


async def test_crash_error_carries_exit_code_and_stderr_tail() -> None:
    with trio.fail_after(30):
        async with sp.open_pool("tests.adapters.broken:Chatty", size=1) as pool:
            with pytest.raises(sp.WorkerCrashed) as info:
                await pool.execute("die_loudly")
            assert info.value.exit_code == 7 and info.value.signal is None
            assert "last words before dying" in info.value.stderr_tail


async def test_idempotent_call_reruns_once_on_another_worker() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=2) as pool:
            # The idempotent call crashes its worker; it is re-run once, elsewhere, and the
            # second run crashes too: the caller sees WorkerCrashed after exactly two runs.
            with pytest.raises(sp.WorkerCrashed) as info:
                await pool.execute("crash", {"code": 3}, idempotent=True)
            assert info.value.exit_code == 3
            assert pool.stats().crashes == 2
            await wait_for(lambda: pool.stats().workers == 2)
            assert pool.stats().restarts == 2


async def test_idempotent_call_survives_a_killed_worker() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=2) as pool:
            result: list[object] = []

            async def call() -> None:
                # Long enough that the kill below surely lands while it runs.
                result.append(await pool.execute("sleep", {"seconds": 2.0}, idempotent=True))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call)
                await wait_for(lambda: pool.stats().in_flight > 0)
                busy = next(w for w in pool.workers() if w.in_flight)
                os.kill(busy.pid, signal.SIGKILL)
            assert result == ["slept"]
            assert pool.stats().crashes == 1


async def test_execute_after_exit_raises_pool_closed() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1) as pool:
            pass
        with pytest.raises(sp.PoolClosed):
            await pool.execute("add", {"a": 1})


async def test_queue_full_raises_pool_saturated_at_once() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, max_queue=1, prefetch=0) as pool:
            async with trio.open_nursery() as nursery:
                # One call runs and one waits, until this test cancels them.
                nursery.start_soon(pool.execute, "sleep", {"seconds": 30})
                nursery.start_soon(pool.execute, "sleep", {"seconds": 30})
                await wait_for(lambda: pool.stats().queued == 1)
                # "At once" means before the caller's first checkpoint: a refusal that came
                # only after waiting (for a slot, a timer, the worker) fails this block.
                with trio.testing.assert_no_checkpoints(), pytest.raises(sp.PoolSaturated):
                    await pool.execute("add", {"a": 1})
                nursery.cancel_scope.cancel()
            assert pool.stats().saturated == 1


async def test_queue_timeout_and_request_timeout() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, prefetch=0) as pool:
            # Behind a call that runs until cancelled, a call times out while queued.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pool.execute, "sleep", {"seconds": 30})
                await wait_for(lambda: pool.stats().in_flight > 0)
                with pytest.raises(sp.RequestTimeout) as queued:
                    await pool.execute("add", {"a": 1}, timeout=0.2)
                assert queued.value.started is False
                nursery.cancel_scope.cancel()

            # A call that times out after it was dispatched says so. It queues behind a
            # call that this test cancels once it is queued, so it is dispatched one cancel
            # round trip later (not when some tool happens to end), long before its own 3 s
            # budget is spent: a timeout while still queued would say started=False.
            blocker = trio.CancelScope()
            running: list[sp.RequestTimeout] = []

            async def block() -> None:
                with blocker:
                    await pool.execute("sleep", {"seconds": 30})

            async def times_out_running() -> None:
                with pytest.raises(sp.RequestTimeout) as info:
                    await pool.execute("sleep", {"seconds": 30}, timeout=3.0)
                running.append(info.value)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(block)
                await wait_for(lambda: pool.stats().in_flight == 1)
                nursery.start_soon(times_out_running)
                await wait_for(lambda: pool.stats().queued == 1)
                blocker.cancel()  # its tool sees ctx.cancelled and returns: the slot frees
            [err] = running
            assert err.started is True
        async with sp.open_pool(ECHO, size=1, prefetch=0, queue_timeout=0.2) as pool:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pool.execute, "sleep", {"seconds": 30})
                await wait_for(lambda: pool.stats().in_flight > 0)
                start = trio.current_time()
                with pytest.raises(sp.QueueTimeout):
                    await pool.execute("add", {"a": 1})
                end = trio.current_time()
                # Not before queue_timeout, and long before the 30 s call ahead of it ends
                # (exact time: pool-layer test).
                assert start + 0.2 <= end < start + 5.0
                nursery.cancel_scope.cancel()
            assert pool.stats().queue_timeouts == 1


async def test_cancelling_the_caller_cancels_the_tool_and_frees_the_slot() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, prefetch=0) as pool:
            with trio.move_on_after(0.3):
                await pool.execute("sleep", {"seconds": 30})
            # The sync tool saw ctx.cancelled and returned, freeing the only slot long before
            # its 30 s were up (generous bounds across processes).
            with trio.fail_after(10):
                assert await pool.execute("add", {"a": 1}) == 2
            with trio.move_on_after(0.3):
                await pool.execute("asleep", {"seconds": 30})
            with trio.fail_after(10):
                assert await pool.execute("add", {"a": 2}) == 3


async def test_deadline_reaches_the_tool_context() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1) as pool:
            ctx = await pool.execute("context", timeout=30)
            assert 20.0 < ctx["remaining"] <= 30.0  # the budget left, less the trip there
            assert ctx["session_id"] is None
            assert (await pool.execute("context"))["remaining"] is None


async def test_worker_never_imports_trio() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1) as pool:
            assert await pool.execute("modules") == []


async def test_introspection() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=2, name="intro") as pool:
            stats = pool.stats()
            assert (stats.workers, stats.available, stats.busy, stats.queued) == (2, 2, 0, 0)
            with pytest.raises(AttributeError):
                stats.workers = 3  # type: ignore[misc]
            infos = pool.workers()
            assert {i.state for i in infos} == {"ready"}
            assert all(i.rss and i.rss > 1_000_000 for i in infos)
            assert all(i.id.startswith("intro-") for i in infos)
            tools = {t.name: t for t in pool.tools()}
            assert tools["add"].description == "Add two integers."
            add_params = {p.name: p for p in tools["add"].params}
            assert add_params["a"].required and add_params["a"].type == "int"
            assert add_params["b"].default == 1
            assert tools["count"].streaming
            await pool.execute("add", {"a": 1})
            text = repr(pool)
            assert "intro" in text and "workers=2/2" in text and "requests=1" in text


async def test_progress_reports_reach_the_caller_in_order() -> None:
    seen: list[sp.Progress] = []
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1) as pool:
            assert await pool.execute("steps", {"n": 5}, on_progress=seen.append) == 5
    assert [(p.done, p.total, p.message) for p in seen] == [
        (i, 5.0, f"step {i}") for i in range(1, 6)
    ]
    assert seen[-1].fraction == 1.0


async def test_kill_on_cancel_replaces_a_worker_whose_tool_ignores_the_cancel() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, cancel_grace=0.2) as pool:
            [before] = pool.workers()
            tool_seconds = 30.0
            start = trio.current_time()
            with pytest.raises(sp.RequestTimeout):
                await pool.execute(
                    "stubborn", {"seconds": tool_seconds}, timeout=0.3, kill_on_cancel=True
                )
            # Not before the timeout, and on time rather than after the tool: generous
            # bounds across processes (exact time: pool-layer test).
            end = trio.current_time()
            assert start + 0.3 <= end < start + tool_seconds / 2
            # Its worker is killed after cancel_grace and replaced, long before the tool
            # would have returned by itself.
            await wait_for(
                lambda: pool.stats().restarts == 1 and pool.stats().workers == 1,
                timeout=tool_seconds / 2,
            )
            [after] = pool.workers()
            assert after.pid != before.pid
            assert await pool.execute("add", {"a": 1}) == 2


async def test_without_kill_on_cancel_the_slot_stays_taken_until_the_tool_returns() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, cancel_grace=0.1, prefetch=0) as pool:
            with pytest.raises(sp.RequestTimeout):
                await pool.execute("stubborn", {"seconds": 3.0}, timeout=0.2)
            assert pool.stats().in_flight == 1  # the tool still runs; its worker is not killed
            await wait_for(lambda: pool.stats().in_flight == 0)
            assert pool.stats().restarts == 0


async def test_faults_are_only_for_fake_pools() -> None:
    from snakepit_trio.testing import faults

    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, registry=False) as pool:
            with pytest.raises(TypeError, match="open_fake_pool"):
                faults(pool)
