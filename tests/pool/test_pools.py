"""Pool layer: several named pools (``open_pools``, here ``open_fake_pools``), on a virtual
clock: they start together, route calls by tool, keep their own names, statistics and health,
and close together (draining side by side, or not at all when the block raised)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import faults, open_fake_pools
from tests.pool.adapters import ON_FIT, START_DELAY

Clock = trio.testing.MockClock

TOOLS = "tests.pool.adapters:Tools"
COMPUTE = "tests.pool.adapters:Compute"


def two(**compute: object) -> dict[str, sp.PoolConfig]:
    return {
        "default": sp.PoolConfig(adapter=TOOLS, size=2),
        "compute": sp.PoolConfig(adapter=COMPUTE, size=1, **compute),  # type: ignore[arg-type]
    }


async def test_pools_start_together_and_are_reached_by_name(autojump_clock: Clock) -> None:
    START_DELAY[0] = 5.0
    try:
        start = trio.current_time()
        async with open_fake_pools(two()) as pools:
            # Concurrently: 5 s for both pools (each starts its workers at once), not 10.
            assert trio.current_time() - start == 5.0
            assert list(pools) == ["default", "compute"] and len(pools) == 2
            assert "compute" in pools and "gpu" not in pools
            assert pools["compute"].config.name == "compute"  # named by its key
            assert {w.id.rsplit("-", 1)[0] for w in pools["default"].workers()} == {"default"}
            assert dict(pools.items()) == {"default": pools["default"], "compute": pools["compute"]}
            with pytest.raises(
                KeyError, match=r"no pool named 'comptue' \(did you mean 'compute'\?\)"
            ):
                pools["comptue"]
            assert "'default'" in repr(pools) and "<Pool 'compute' open" in repr(pools)
    finally:
        START_DELAY[0] = 0.0


async def test_calls_are_routed_to_the_pool_that_has_the_tool(autojump_clock: Clock) -> None:
    async with open_fake_pools(two()) as pools:
        assert pools.route("fit") is pools["compute"]
        assert pools.route("serial") is pools["default"]
        start = trio.current_time()
        assert await pools.execute("fit", {"n": 3}) == 6
        assert trio.current_time() - start == 3
        async with pools.stream("epochs", {"n": 2}) as chunks:
            assert [c async for c in chunks] == [0, 1]
        seen: list[int] = []
        await pools.execute_stream("count", {"n": 3}, seen.append)
        assert seen == [0, 1, 2]
        assert pools.stats()["compute"].requests == 2
        assert pools.stats()["default"].requests == 1
        assert [t.name for t in pools.tools()["compute"]] == ["echo", "epochs", "fit"]
        assert [len(ws) for ws in pools.workers().values()] == [2, 1]


async def test_a_tool_in_two_pools_is_ambiguous(autojump_clock: Clock) -> None:
    async with open_fake_pools(two()) as pools:
        with pytest.raises(sp.AmbiguousTool) as info:
            await pools.execute("echo", {"value": 1})
        assert info.value.candidates == ["default", "compute"]
        assert "'default', 'compute'" in str(info.value)
        assert "pools['default'].execute('echo', ...)" in str(info.value)
        assert isinstance(info.value, sp.UnknownTool)  # it could not be routed
        with pytest.raises(sp.AmbiguousTool):
            pools.stream("echo")
        # Each pool, asked directly, answers.
        assert await pools["compute"].execute("echo", {"value": 1}) == ["compute", 1]
        assert await pools["default"].execute("echo", {"value": 1}) == 1
        assert sum(s.requests for s in pools.stats().values()) == 2  # nothing was sent before


async def test_a_tool_no_pool_has_is_unknown_naming_what_exists(autojump_clock: Clock) -> None:
    async with open_fake_pools(two()) as pools:
        with pytest.raises(sp.UnknownTool) as info:
            await pools.execute("fitt", {"n": 1})
        text = str(info.value)
        assert "unknown tool 'fitt' (did you mean 'fit'?); no pool provides it" in text
        assert "'compute': echo, epochs, fit" in text and "'default': calls_here," in text
        assert info.value.pools is not None and info.value.pools["compute"] == [
            "echo",
            "epochs",
            "fit",
        ]
        assert "fit" in info.value.available and "serial" in info.value.available
        with pytest.raises(TypeError, match=r"tool must be a str; got 5 \(an int\)"):
            await pools.execute(5, {})  # type: ignore[arg-type]


async def test_one_pools_crash_storm_leaves_the_other_healthy(autojump_clock: Clock) -> None:
    async with open_fake_pools(two(crash_threshold=3, crash_window=60.0)) as pools:
        compute = pools["compute"]
        for _ in range(3):  # each time on the replacement, once it runs a call
            running = trio.Event()
            ON_FIT[:] = [running.set]

            async def crash_when_running(running: trio.Event = running) -> None:
                await running.wait()
                faults(compute).crash()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(crash_when_running)
                with pytest.raises(sp.WorkerCrashed):
                    await compute.execute("fit", {"n": 100})
        ON_FIT.clear()
        assert compute.stats().health == "unhealthy"
        with pytest.raises(sp.PoolUnhealthy):
            await pools.execute("fit", {"n": 1})
        assert pools.stats()["default"].health == "healthy"
        assert pools.stats()["default"].crashes == 0
        assert await pools.execute("serial") >= 1  # the other pool serves on


async def test_leaving_the_block_drains_every_pool_side_by_side(autojump_clock: Clock) -> None:
    results: list[object] = []

    async def call(pools: sp.Pools, tool: str, args: dict[str, object]) -> None:
        results.append(await pools.execute(tool, args))

    start = trio.current_time()
    async with trio.open_nursery() as nursery, open_fake_pools(two()) as pools:
        nursery.start_soon(call, pools, "fit", {"n": 4})
        nursery.start_soon(call, pools, "sleep", {"seconds": 3})
        await trio.testing.wait_all_tasks_blocked()
        assert sum(s.in_flight for s in pools.stats().values()) == 2
    # Both calls finished while their pools drained at the same time: 4 s, not 7.
    assert sorted(map(str, results)) == ["8", "slept"]
    assert trio.current_time() - start == 4
    assert "closed" in repr(pools["default"]) and "closed" in repr(pools["compute"])


async def test_a_block_that_raises_closes_every_pool_without_draining(
    autojump_clock: Clock,
) -> None:
    failures: list[BaseException] = []

    async def call(pools: sp.Pools) -> None:
        try:
            await pools.execute("fit", {"n": 100})
        except sp.PoolClosed as exc:
            failures.append(exc)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        with pytest.raises(KeyError, match="mine"):
            async with open_fake_pools(two()) as pools:
                nursery.start_soon(call, pools)
                await trio.testing.wait_all_tasks_blocked()
                raise KeyError("mine")  # comes out as itself, not in a group of ours
    assert len(failures) == 1
    # No draining: its worker was stopped at once (SIGTERM, then shutdown_grace at most).
    assert trio.current_time() - start <= 5


async def test_a_pool_that_cannot_start_stops_the_others(autojump_clock: Clock) -> None:
    pools = {
        "default": sp.PoolConfig(adapter=TOOLS, size=2),
        "broken": sp.PoolConfig(adapter="tests.pool.adapters:FailsToStart", size=1),
    }
    with pytest.raises(sp.WorkerStartError, match="no model at /nowhere"):
        async with open_fake_pools(pools):
            raise AssertionError("open_pools must not yield")  # pragma: no cover


async def test_pool_names_must_differ(autojump_clock: Clock) -> None:
    named = {
        "a": sp.PoolConfig(adapter=TOOLS, name="shared"),
        "b": sp.PoolConfig(adapter=COMPUTE, name="shared"),
    }
    with pytest.raises(ValueError, match=r"pools 'a', 'b' are all named 'shared'"):
        async with open_fake_pools(named):
            pass  # pragma: no cover
    clash = {"a": sp.PoolConfig(adapter=TOOLS, name="b"), "b": sp.PoolConfig(adapter=COMPUTE)}
    with pytest.raises(ValueError, match="pool names must differ"):
        async with open_fake_pools(clash):
            pass  # pragma: no cover
    own = {"a": sp.PoolConfig(adapter=TOOLS, size=1, name="mine")}
    async with open_fake_pools(own) as pools:
        assert pools["a"].config.name == "mine"  # a name of its own is kept
        assert pools["a"].workers()[0].id.startswith("mine-")


@pytest.mark.parametrize(
    ("argument", "error", "message"),
    [
        ({}, ValueError, r"needs at least one pool"),
        (sp.PoolConfig(adapter=TOOLS), TypeError, r"takes a dict of pool names to PoolConfig"),
        ([("a", 1)], TypeError, r"takes a dict .*; got \[\('a', 1\)\] \(a list\)"),
        ({"a": {"adapter": TOOLS}}, TypeError, r"pool 'a' must be a PoolConfig; got .*a dict"),
        ({"": sp.PoolConfig(adapter=TOOLS)}, ValueError, r"a pool's name must be a non-empty"),
        (
            {1: sp.PoolConfig(adapter=TOOLS)},
            TypeError,
            r"a pool's name must be a non-empty str; got 1 \(an int\)",
        ),
    ],
)
async def test_bad_arguments_are_named(
    autojump_clock: Clock, argument: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        async with open_fake_pools(argument):  # type: ignore[arg-type]
            pass  # pragma: no cover
