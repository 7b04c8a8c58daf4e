"""End-to-end (real workers, both transports): workers' tools call tools registered on the host."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trio
import trio.lowlevel
import trio.testing

import snakepit_trio as sp
from tests.helpers import wait_for

BRIDGE = "tests.adapters.bridge:Bridge"
LIMIT = 60  # seconds any test may take on a loaded machine (a bound, never a pause)


async def test_sync_and_async_tools_call_sync_and_async_host_tools() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1, worker_capacity=2) as pool:

            @pool.host_tool
            async def lookup(key: str) -> str:
                await trio.lowlevel.checkpoint()
                return f"async:{key}"

            def digest(data: bytes) -> int:
                """A sync host tool (it runs in a thread)."""
                return sum(data)

            spec = pool.register_host_tool(digest, name="digest")
            assert spec.name == "digest" and spec.description.startswith("A sync host tool")
            assert [p.name for p in spec.params] == ["data"]

            for tool in ("call", "acall"):
                got = await pool.execute(tool, {"name": "lookup", "args": {"key": "k"}})
                assert got == {"value": "async:k"}
                got = await pool.execute(tool, {"name": "digest", "args": {"data": b"\x01\x02"}})
                assert got == {"value": 3}
            assert await pool.execute("proxy", {"key": "p"}) == "async:p"
            assert await pool.execute("aproxy", {"key": "q"}) == "async:q"
            assert await pool.execute("listing") == ["digest", "lookup"]
            listed = await pool.execute("alisting")
            assert listed["digest"]["params"] == [
                {"name": "data", "type": "bytes", "required": True}
            ]
            assert [t.name for t in pool.host_tools()] == ["digest", "lookup"]
            assert pool.unregister_host_tool("digest") and not pool.unregister_host_tool("digest")
            assert [t.name for t in pool.host_tools()] == ["lookup"]


async def test_host_tool_failures_reach_the_worker_tool_typed() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1) as pool:

            @pool.host_tool
            def boom(n: int) -> None:
                raise KeyError(f"no {n}")

            @pool.host_tool
            def unencodable() -> object:
                return object()

            for tool in ("call", "acall"):
                got = await pool.execute(tool, {"name": "boom", "args": {"n": 3}})
                assert got == {
                    "error": "HostToolError",
                    "kind": "remote",
                    "remote_type": "KeyError",
                    "message": "'no 3'",
                }
                got = await pool.execute(tool, {"name": "nope", "args": None})
                assert got["error"] == "UnknownHostTool" and got["kind"] == "unknown_tool"
                assert "boom" in got["message"] and "unencodable" in got["message"]
                got = await pool.execute(tool, {"name": "boom", "args": {"n": "x"}})
                assert got["kind"] == "invalid_arguments" and "'n'" in got["message"]
                got = await pool.execute(tool, {"name": "boom", "args": {"m": 1}})
                assert got["kind"] == "invalid_arguments" and "'m'" in got["message"]
                got = await pool.execute(tool, {"name": "unencodable", "args": None})
                assert got["kind"] == "serialization" and "object" in got["message"]
            got = await pool.execute("blocking_on_loop")
            assert got["error"] == "RuntimeError" and "acall_host_tool" in got["message"]
            # The worker serves on after every one of them.
            assert await pool.execute("pid") > 0


async def test_bad_registrations_are_refused_with_what_to_change() -> None:
    async with sp.open_pool(BRIDGE, size=1) as pool:
        with pytest.raises(TypeError, match="must be a function"):
            pool.register_host_tool(42)  # type: ignore[arg-type]

        def gen() -> Any:
            yield 1

        with pytest.raises(TypeError, match="generator"):
            pool.register_host_tool(gen)

        def positional(a: int, /) -> int:
            return a

        with pytest.raises(TypeError, match="keyword"):
            pool.register_host_tool(positional)
        with pytest.raises(ValueError, match="the pool's own"):
            pool.register_host_tool(len, name="snakepit.get_variable")
        with pytest.raises(ValueError, match="non-empty"):
            pool.register_host_tool(len, name="")
        with pytest.raises(TypeError, match="session must be"):
            pool.host_tools(session=3)  # type: ignore[arg-type]


async def test_session_tools_shadow_the_pools_for_that_session_only_and_go_with_it() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=2) as pool:
            pool.register_host_tool(lambda: "pool", name="who")
            async with pool.session("a") as a, pool.session("b") as b:

                @a.host_tool(name="who")
                def who_a() -> str:
                    return "a"

                a.register_host_tool(lambda: "secret", name="secret")
                assert await a.execute("call", {"name": "who", "args": None}) == {"value": "a"}
                assert await b.execute("call", {"name": "who", "args": None}) == {"value": "pool"}
                assert await pool.execute("call", {"name": "who", "args": None}) == {
                    "value": "pool"
                }
                got = await b.execute("call", {"name": "secret", "args": None})
                assert got["kind"] == "unknown_tool"
                assert await a.execute("listing") == ["secret", "who"]
                assert await b.execute("listing") == ["who"]
                assert [t.name for t in pool.host_tools(session=a)] == ["secret", "who"]
                assert a.unregister_host_tool("secret")
                assert [t.name for t in pool.host_tools(session="a")] == ["who"]
            # Closed with the session: its calls are gone, and so are its tools.
            assert [t.name for t in pool.host_tools(session="a")] == ["who"]
            assert pool.host_tools(session="a")[0] == pool.host_tools()[0]


async def test_a_worker_cannot_name_a_call_it_is_not_running() -> None:
    """A HOST_CALL naming another worker's call (to reach that call's session's tools) is a
    protocol violation: that worker is replaced, and the tool never runs."""
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=2) as pool:
            ran: list[str] = []
            gate = trio.Event()
            async with pool.session("victim") as victim, pool.session("rogue") as rogue:
                assert victim.worker_id != rogue.worker_id

                @victim.host_tool
                async def wait() -> None:
                    await gate.wait()

                @victim.host_tool
                def secret() -> None:
                    ran.append("secret")

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(victim.execute, "call", {"name": "wait", "args": None})
                    await wait_for(lambda: any(w.calls for w in pool.workers()))
                    [target] = [c.id for w in pool.workers() for c in w.calls]
                    with pytest.raises(sp.WorkerCrashed) as info:
                        await rogue.execute("forge", {"call_id": target, "name": "secret"})
                    assert info.value.cause == "protocol"
                    gate.set()
            assert ran == []


async def test_host_tool_context_and_deadline() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1) as pool:
            seen: list[sp.HostToolContext] = []

            @pool.host_tool
            def context(ctx: sp.HostToolContext) -> str:
                seen.append(ctx)
                return "ok"

            async with pool.session("s") as s:
                await s.execute("call", {"name": "context", "args": None}, timeout=30)
            await pool.execute("call", {"name": "context", "args": None})
            with_session, without = seen
            assert with_session.session == s and with_session.session_id == "s"
            assert with_session.tool == "call" and with_session.pool is pool
            assert with_session.worker_id == pool.workers()[0].id
            assert with_session.deadline is not None
            assert without.session is None and without.deadline is None
            assert without.time_remaining() is None and with_session.call_id != without.call_id


async def test_a_host_tool_is_cancelled_at_its_calls_deadline() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1) as pool:
            ended = trio.Event()

            @pool.host_tool
            async def forever() -> None:
                try:
                    await trio.sleep_forever()
                finally:
                    ended.set()

            with pytest.raises(sp.RequestTimeout):
                await pool.execute("acall", {"name": "forever", "args": None}, timeout=0.5)
            await ended.wait()
            assert await pool.execute("pid") > 0


async def test_cancelling_the_caller_cancels_the_host_tool_and_wakes_the_sync_worker_tool(
    tmp_path: Path,
) -> None:
    """A sync tool blocked in call_host_tool is woken (an async tool's case is the contract
    suite's, tests/contract/test_bridge.py, for every runtime)."""
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1) as pool:
            started, ended = trio.Event(), trio.Event()

            @pool.host_tool
            async def forever() -> None:
                started.set()
                try:
                    await trio.sleep_forever()
                finally:
                    ended.set()

            report = tmp_path / "report"
            args = {"name": "forever", "report": str(report)}
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pool.execute, "blocked", args)
                await started.wait()
                nursery.cancel_scope.cancel()
            await ended.wait()  # its finally ran
            await wait_for(report.exists)  # the sync tool blocked in call_host_tool was woken
            outcome = eval(report.read_text())  # a repr the tool wrote
            assert outcome["error"] == "HostToolError" and outcome["kind"] == "cancelled"
            assert await pool.execute("pid") > 0  # the worker is free again


async def test_a_worker_killed_during_a_host_tool_cancels_it_and_its_caller_sees_the_crash() -> (
    None
):
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1) as pool:
            started, ended = trio.Event(), trio.Event()
            pid = pool.workers()[0].pid

            @pool.host_tool
            async def forever() -> None:
                started.set()
                try:
                    await trio.sleep_forever()
                finally:
                    ended.set()

            async def kill_when_started() -> None:
                await started.wait()
                os.kill(pid, signal.SIGKILL)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(kill_when_started)
                with pytest.raises(sp.WorkerCrashed):
                    await pool.execute("call", {"name": "forever", "args": None})
            await ended.wait()
            await wait_for(lambda: len(pool.workers()) == 1 and pool.workers()[0].pid != pid)
            assert await pool.execute("pid") != pid


async def test_tools_read_and_write_their_sessions_variables_with_its_rules() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1) as pool:
            async with pool.session() as s:
                s.register_variable("temperature", "float", 0.5, min=0.0, max=2.0)
                got = await s.execute("variables", {"name": "temperature", "delta": 1})
                assert got == {"before": 0.5, "after": 1.5}
                assert s.get_variable("temperature") == 1.5
                got = await s.execute("variables", {"name": "temperature", "delta": 1})
                assert got["error"] == "InvalidVariable" and got["constraint"] == "max"
                assert s.get_variable("temperature") == 1.5
                got = await s.execute("avariables", {"name": "temperature", "value": 0.25})
                assert got == {"value": 0.25}
                got = await s.execute("avariables", {"name": "missing", "value": 1})
                assert got["error"] == "InvalidVariable"
            got = await pool.execute("variables", {"name": "temperature", "delta": 1})
            assert got["error"] == "InvalidVariable" and got["constraint"] == "session"


async def test_a_nested_call_on_its_own_strict_session_borrows_the_parked_slot() -> None:
    """One worker of capacity 1: the host tool's call to the same session can only run in the
    slot its parent holds while it waits; it does, and both complete."""
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1, worker_capacity=1) as pool:

            @pool.host_tool
            async def nested(ctx: sp.HostToolContext) -> int:
                assert ctx.session is not None
                return await ctx.session.execute("pid")  # type: ignore[no-any-return]

            @pool.host_tool
            async def via_pool(ctx: sp.HostToolContext) -> int:
                return await ctx.pool.execute("napping", {"seconds": 0})  # type: ignore[no-any-return]

            async with pool.session() as s:
                got = await s.execute("call", {"name": "nested", "args": None})
                assert got == {"value": pool.workers()[0].pid}
            got = await pool.execute("acall", {"name": "via_pool", "args": None})
            assert got == {"value": pool.workers()[0].pid}


async def test_nesting_deeper_than_the_limit_fails_fast() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1, max_reentry_depth=2) as pool:
            depths: list[int] = []

            @pool.host_tool
            async def deeper(level: int, ctx: sp.HostToolContext) -> Any:
                depths.append(level)
                return await ctx.pool.execute(
                    "acall", {"name": "deeper", "args": {"level": level + 1}}
                )

            got = await pool.execute("acall", {"name": "deeper", "args": {"level": 1}})
            # level 1's host tool nests a call (depth 1), level 2's another (depth 2); level
            # 3's would be depth 3: refused, and each level reports the failure below it.
            assert depths == [1, 2, 3]
            inner = got["value"]["value"]
            assert inner["kind"] == "reentrancy" and "max_reentry_depth=2" in inner["message"]


async def test_a_nested_call_that_could_only_wait_for_parked_slots_fails_fast() -> None:
    """Two workers of capacity 1, each running a call parked in a host tool; one host tool
    calls the other's strict session: that slot is parked and is not its ancestor's."""
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=2, worker_capacity=1) as pool:
            gate = trio.Event()
            async with pool.session("a") as a, pool.session("b") as b:
                assert a.worker_id != b.worker_id

                @a.host_tool
                async def hold() -> None:
                    await gate.wait()

                @b.host_tool
                async def cross() -> Any:
                    return await a.execute("pid")

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(a.execute, "acall", {"name": "hold", "args": None})
                    await wait_for(lambda: any(w.calls for w in pool.workers()))
                    got = await b.execute("acall", {"name": "cross", "args": None})
                    assert (
                        got["kind"] == "reentrancy" and "waiting in a host tool" in got["message"]
                    )
                    gate.set()


async def test_host_tools_beyond_max_host_tool_calls_wait_their_turn() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=2, max_host_tool_calls=1) as pool:
            running, most = 0, 0
            entered = trio.Event()
            release = trio.Event()

            @pool.host_tool
            async def gate() -> int:
                nonlocal running, most
                running += 1
                most = max(most, running)
                entered.set()
                try:
                    await release.wait()
                finally:
                    running -= 1
                return most

            results: list[Any] = []

            async def one() -> None:
                results.append(await pool.execute("acall", {"name": "gate", "args": None}))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(one)
                nursery.start_soon(one)
                await entered.wait()
                # Both calls asked (the host holds both host calls): the second waits its turn.
                await wait_for(lambda: len(pool._engine.host_calls.parked) == 2)
                await trio.testing.wait_all_tasks_blocked()
                assert running == 1
                release.set()
            assert results == [{"value": 1}, {"value": 1}]


async def test_a_nested_calls_host_tool_never_waits_for_its_ancestors_slot() -> None:
    """max_host_tool_calls=1: the outer host tool holds the only slot while its nested call
    runs; that call's own host tool runs within its ancestor's slot instead of waiting."""
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=2, max_host_tool_calls=1) as pool:

            @pool.host_tool
            async def h1(ctx: sp.HostToolContext) -> Any:
                return await ctx.pool.execute("acall", {"name": "h2", "args": None})

            @pool.host_tool
            async def h2() -> str:
                return "inner"

            got = await pool.execute("acall", {"name": "h1", "args": None})
            assert got == {"value": {"value": "inner"}}


async def test_a_borrowed_stream_runs_beside_the_sync_generator_that_waits_for_it() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1, worker_capacity=1) as pool:

            @pool.host_tool
            async def inner_stream(ctx: sp.HostToolContext) -> list[int]:
                assert ctx.session is not None
                async with ctx.session.stream("gen_plain", {"n": 3}) as chunks:
                    return [c async for c in chunks]

            async with pool.session() as s, s.stream("gen_host", {"name": "inner_stream"}) as out:
                assert [c async for c in out] == [[0, 1, 2]]


async def test_cancelled_sync_host_tools_hold_none_of_the_pools_own_threads() -> None:
    """A sync host tool cannot be interrupted: cancelled, its thread runs on. It runs on the
    host tools' own threads, so the pool's other work (and its close) never waits for it."""
    release = threading.Event()
    try:
        with trio.fail_after(LIMIT):
            trio.to_thread.current_default_thread_limiter().total_tokens = 2
            async with sp.open_pool(BRIDGE, size=1, worker_capacity=2) as pool:
                started: list[int] = []

                def stuck() -> None:
                    started.append(1)
                    release.wait()

                pool.register_host_tool(stuck)
                for _ in range(2):
                    with pytest.raises(sp.RequestTimeout):
                        await pool.execute("call", {"name": "stuck", "args": None}, timeout=0.5)
                assert len(started) == 2
                assert await trio.to_thread.run_sync(lambda: "default threads free") == (
                    "default threads free"
                )
            # Closed while both threads still block: they are the host tools' own.
            assert not release.is_set()
    finally:
        release.set()


async def test_a_closed_sessions_handle_registers_nothing_for_a_later_session_of_its_id() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1) as pool:
            async with pool.session("tenant") as old:
                pass
            with pytest.raises(sp.SessionLost):
                old.register_host_tool(lambda: "secret", name="leak")
            assert not old.unregister_host_tool("leak")
            async with pool.session("tenant") as new:
                assert await new.execute("listing") == []
                got = await new.execute("call", {"name": "leak", "args": None})
                assert got["kind"] == "unknown_tool"


async def test_unexpected_failures_serving_a_host_call_are_the_callers_not_the_pools() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1) as pool:

            @pool.host_tool
            def leaves() -> None:
                raise SystemExit(3)

            got = await pool.execute("call", {"name": "leaves", "args": None})
            assert got["kind"] == "remote" and got["remote_type"] == "SystemExit"
            async with pool.session() as s:
                # A choice that cannot be compared with the new value (numpy arrays):
                # its rules raise, not the variable's.
                zeros = np.zeros(2)
                s.register_variable("v", "ndarray", zeros, choices=[zeros])
                got = await s.execute("avariables", {"name": "v", "value": np.arange(2)})
                assert got["error"] == "HostToolError" and "ValueError" in got["remote_type"]
            assert await pool.execute("pid") > 0


async def test_a_reused_host_call_id_replaces_the_worker_before_anything_of_its_batch() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1) as pool:
            ran: list[str] = []

            @pool.host_tool
            def noted() -> None:
                ran.append("ran")

            with pytest.raises(sp.WorkerCrashed) as info:
                await pool.execute("forge_twice", {"name": "noted"})
            assert info.value.cause == "protocol" and ran == []


async def test_a_task_a_host_tool_started_makes_ordinary_calls_once_its_call_ended() -> None:
    with trio.fail_after(LIMIT):
        async with sp.open_pool(BRIDGE, size=1, max_reentry_depth=0) as pool:
            go, done = trio.Event(), trio.Event()
            outcome: list[Any] = []

            async with trio.open_nursery() as background:

                @pool.host_tool
                async def spawn() -> str:
                    async def later() -> None:
                        await go.wait()
                        outcome.append(await pool.execute("pid"))
                        done.set()

                    background.start_soon(later)  # inherits the host tool's context
                    return "spawned"

                assert await pool.execute("acall", {"name": "spawn", "args": None}) == {
                    "value": "spawned"
                }
                go.set()
                await done.wait()
            assert outcome == [pool.workers()[0].pid]
