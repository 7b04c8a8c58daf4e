"""End-to-end (real workers): session affinity, loss, expiry, quota and session streams."""

from __future__ import annotations

import os
import signal

import pytest
import trio

import snakepit_trio as sp
from tests.helpers import wait_for

COUNTER = "tests.adapters.stateful:Counter"


async def test_strict_session_never_leaves_its_worker_even_under_load() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(COUNTER, size=2) as pool:
            async with pool.session("user-42") as session:
                assert session.id == "user-42" and session.affinity == "strict"
                pid = next(w.pid for w in pool.workers() if w.id == session.worker_id)
                results: list[dict[str, object]] = []

                async def load() -> None:
                    for _ in range(30):
                        await pool.execute("hold", {"seconds": 0.002})

                async with trio.open_nursery() as nursery:
                    for _ in range(4):
                        nursery.start_soon(load)
                    for _ in range(30):
                        results.append(await session.execute("incr"))
                assert {r["pid"] for r in results} == {pid}
                assert [r["count"] for r in results] == list(range(1, 31))
                assert {r["session"] for r in results} == {"user-42"}
                assert pool.stats().sessions == 1
            assert pool.stats().sessions == 0


async def test_calls_in_one_session_start_in_submission_order() -> None:
    with trio.fail_after(60):
        async with (
            sp.open_pool(COUNTER, size=2, worker_capacity=1) as pool,
            pool.session() as session,
        ):
            async with trio.open_nursery() as nursery:
                for _ in range(25):
                    nursery.start_soon(session.execute, "incr")
            state = await session.execute("state")
            order = state["order"]
            assert len(order) == 25 and order == sorted(order)


async def test_strict_session_is_lost_when_its_worker_dies() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(COUNTER, size=2) as pool:
            session = await pool.open_session()
            await session.execute("incr")
            bound = next(w for w in pool.workers() if w.id == session.worker_id)

            async def running_call() -> None:
                with pytest.raises(sp.WorkerCrashed):
                    await session.execute("hold", {"seconds": 30})

            async with trio.open_nursery() as nursery:
                nursery.start_soon(running_call)
                await wait_for(lambda: pool.stats().in_flight == 1)
                os.kill(bound.pid, signal.SIGKILL)
            assert session.lost
            with pytest.raises(sp.SessionLost) as info:
                await session.execute("incr")
            assert info.value.session_id == session.id
            [listed] = pool.list_sessions()
            assert listed.lost is not None
            # A new session lands on a live worker and starts from scratch.
            await wait_for(lambda: pool.stats().workers == 2)
            async with pool.session() as fresh:
                assert (await fresh.execute("incr"))["count"] == 1
            pool.close_session(session.id)


async def test_queued_strict_calls_fail_with_session_lost() -> None:
    with trio.fail_after(60):
        async with (
            sp.open_pool(COUNTER, size=2, prefetch=0) as pool,
            pool.session() as session,
        ):
            bound = next(w for w in pool.workers() if w.id == session.worker_id)
            outcomes: list[BaseException] = []

            async def call(seconds: float) -> None:
                try:
                    await session.execute("hold", {"seconds": seconds})
                except sp.SnakepitError as exc:
                    outcomes.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, 30)
                await wait_for(lambda: pool.stats().in_flight == 1)
                nursery.start_soon(call, 0.01)
                await wait_for(lambda: pool.stats().queued == 1)
                os.kill(bound.pid, signal.SIGKILL)
            kinds = sorted(type(e).__name__ for e in outcomes)
            assert kinds == ["SessionLost", "WorkerCrashed"]


async def test_prefer_session_uses_another_worker_when_its_own_is_busy() -> None:
    with trio.fail_after(60):
        async with (
            sp.open_pool(COUNTER, size=2) as pool,
            pool.session(affinity="prefer") as session,
        ):
            own = next(w.pid for w in pool.workers() if w.id == session.worker_id)
            assert (await session.execute("incr"))["pid"] == own
            async with trio.open_nursery() as nursery:
                # Its own worker stays busy until this test cancels the call.
                nursery.start_soon(session.execute, "hold", {"seconds": 30})
                await wait_for(lambda: pool.stats().in_flight == 1)
                other = await session.execute("hold", {"seconds": 0})
                assert other != own
                nursery.cancel_scope.cancel()


async def test_closing_a_session_runs_on_session_end_in_its_worker() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(COUNTER, size=1) as pool:
            a = await pool.open_session("a")
            await a.execute("incr")
            a.close()
            await pool.execute_in_session("b", "incr")  # opened on first use
            assert pool.close_session("b") and not pool.close_session("b")
            # The SESSION_END frames precede this call on the wire; on_session_end runs
            # as its own task in the worker, so re-check until it has.
            state = await pool.execute("state")
            while state["ended"] != ["a", "b"]:
                state = await pool.execute("state")
            assert state["counts"] == {}


async def test_idle_sessions_expire() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(COUNTER, size=1, session_ttl=1.0) as pool:
            session = await pool.open_session(metadata={"user": 7})
            keep = await pool.open_session(ttl=60)
            await session.execute("incr")
            [info] = [i for i in pool.list_sessions() if i.id == session.id]
            assert info.metadata == {"user": 7} and info.calls == 1
            await wait_for(lambda: pool.get_session(session.id) is None)
            assert pool.get_session(keep.id) is not None
            with pytest.raises(sp.SessionLost, match="closed or expired"):
                await session.execute("incr")


async def test_session_quota_and_bad_options() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(COUNTER, size=1, max_sessions=2) as pool:
            async with pool.session(), pool.session():
                with pytest.raises(sp.SessionQuotaExceeded):
                    await pool.open_session()
            async with pool.session("x"):
                with pytest.raises(ValueError, match="already exists"):
                    await pool.open_session("x")
            with pytest.raises(ValueError, match="affinity"):
                await pool.open_session(affinity="sticky")
            assert pool.stats().sessions == 0


async def test_sessions_spread_over_workers_and_streams_stay_bound() -> None:
    with trio.fail_after(60):
        async with (
            sp.open_pool(COUNTER, size=2) as pool,
            pool.session() as one,
            pool.session() as two,
        ):
            assert one.worker_id != two.worker_id  # least-loaded binding
            pid = next(w.pid for w in pool.workers() if w.id == two.worker_id)
            async with two.stream("countdown", {"n": 3}) as chunks:
                got = [c async for c in chunks]
            assert [c["left"] for c in got] == [3, 2, 1]
            assert {c["pid"] for c in got} == {pid}
            assert {c["session"] for c in got} == {two.id}
            seen: list[object] = []
            await pool.execute_in_session_stream(one.id, "countdown", {"n": 2}, seen.append)
            assert len(seen) == 2


async def test_typed_session_variables() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(COUNTER, size=1) as pool, pool.session() as session:
            session.register_variable("temperature", "float", 0.7, min=0, max=2)
            session.register_variable("mode", "str", "fast", choices=["fast", "exact"])
            session.set_variable("temperature", 1)
            assert session.get_variable("temperature") == 1.0
            with pytest.raises(sp.InvalidVariable) as info:
                session.set_variable("temperature", 3)
            assert info.value.constraint == "max" and info.value.name == "temperature"
            with pytest.raises(sp.InvalidVariable, match="one of"):
                session.set_variable("mode", "slow")
            assert {v.name: v.value for v in session.list_variables()} == {
                "temperature": 1.0,
                "mode": "fast",
            }
            session.delete_variable("mode")
            with pytest.raises(sp.InvalidVariable, match="no variable 'mode'"):
                session.get_variable("mode")
