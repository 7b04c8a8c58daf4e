"""End-to-end: several pools of real workers (``open_pools``): routing by tool, one pool's
crash storm beside a healthy pool, and one SIGTERM draining every pool."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import pytest
import trio

import snakepit_trio as sp
from tests.conftest import pid_alive
from tests.helpers import wait_for

ECHO = "tests.adapters.basic:Echo"
FLAKY = "tests.adapters.broken:StartsWhenAllowed"
FAST_RESTART = sp.RestartPolicy(initial=0.05, factor=2.0, max_delay=0.2)


def configs(block: pathlib.Path, **flaky: object) -> dict[str, sp.PoolConfig]:
    return {
        "echo": sp.PoolConfig(adapter=ECHO, size=2),
        "flaky": sp.PoolConfig(
            adapter=FLAKY,
            size=1,
            env={"SNAKEPIT_TEST_BLOCK_START": str(block)},
            **flaky,  # type: ignore[arg-type]
        ),
    }


async def test_two_pools_of_processes_route_calls_by_tool(tmp_path: pathlib.Path) -> None:
    with trio.fail_after(60):
        async with sp.open_pools(configs(tmp_path / "never")) as pools:
            assert [len(ws) for ws in pools.workers().values()] == [2, 1]
            echo_pids = {w.pid for w in pools["echo"].workers()}
            assert await pools.execute("pid") in echo_pids
            assert await pools.execute("ok") == "ok"  # only the flaky pool has it
            with pytest.raises(sp.AmbiguousTool, match=r"pools 'echo', 'flaky'"):
                await pools.execute("crash")  # both have it: nothing is sent
            with pytest.raises(sp.UnknownTool, match=r"'echo': add, aecho, "):
                await pools.execute("nope")
            async with pools.stream("count", {"n": 3}) as chunks:
                assert [c async for c in chunks] == [0, 1, 2]
            assert {name: s.requests for name, s in pools.stats().items()} == {
                "echo": 2,
                "flaky": 1,
            }
            assert all(w.id.startswith("flaky-") for w in pools["flaky"].workers())


async def test_one_pools_crash_storm_never_touches_the_other(tmp_path: pathlib.Path) -> None:
    block = tmp_path / "block-start"
    flaky = {"crash_threshold": 2, "crash_window": 60.0, "probe_after": 60.0}
    with trio.fail_after(60):
        async with sp.open_pools(configs(block, restart=FAST_RESTART, **flaky)) as pools:
            block.touch()  # from now on the flaky pool's replacements fail to start
            with pytest.raises(sp.WorkerCrashed):
                await pools["flaky"].execute("crash")
            await wait_for(lambda: pools.stats()["flaky"].health == "unhealthy")
            with pytest.raises(sp.PoolUnhealthy):
                await pools.execute("ok")
            # The other pool: healthy, every worker up, and it serves.
            echo = pools.stats()["echo"]
            assert (echo.health, echo.crashes, echo.workers) == ("healthy", 0, 2)
            assert await pools.execute("add", {"a": 1, "b": 2}) == 3
            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(pools.execute, "add", {"a": i})
            assert pools.stats()["echo"].errors == 0


HOST = textwrap.dedent(
    """
    import json, logging, sys, trio
    import snakepit_trio as sp
    from snakepit_trio._engine import _signals

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")
    watches = []
    _watch = _signals.watch

    async def counted_watch(*args, **kwargs):
        watches.append(1)
        await _watch(*args, **kwargs)

    _signals.watch = counted_watch

    async def main():
        configs = {name: sp.PoolConfig(adapter="tests.adapters.basic:Echo", size=1)
                   for name in ("first", "second")}
        async with sp.open_pools(configs) as pools:
            async def call(name):
                result = await pools[name].execute("sleep", {"seconds": 1.0})
                print(json.dumps({name: result}), flush=True)

            async with trio.open_nursery() as nursery:
                for name in pools:
                    nursery.start_soon(call, name)
                while sum(s.in_flight for s in pools.stats().values()) < 2:
                    await trio.sleep(0.01)
                pids = [w.pid for ws in pools.workers().values() for w in ws]
                print(json.dumps({"workers": pids, "watches": len(watches)}), flush=True)

    trio.run(main)
    """
)


async def test_one_sigterm_drains_every_pool_then_ends_the_process() -> None:
    host = await trio.lowlevel.open_process(
        [sys.executable, "-c", HOST],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        start_new_session=True,
    )
    out, err = bytearray(), bytearray()
    assert host.stdout is not None and host.stderr is not None
    try:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:

                async def drain(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
                    async for chunk in stream:
                        into.extend(chunk)

                nursery.start_soon(drain, host.stderr, err)
                async for chunk in host.stdout:
                    out.extend(chunk)
                    if b'"workers"' in out and out.endswith(b"\n"):
                        break
                report = json.loads(out.splitlines()[0])
                os.killpg(host.pid, signal.SIGTERM)
                async for chunk in host.stdout:
                    out.extend(chunk)
                await host.wait()
    finally:
        if host.returncode is None:
            host.kill()
            await host.wait()
    lines = [json.loads(line) for line in out.splitlines()]
    text = err.decode()
    assert report["watches"] == 1, text  # one watch for both pools, none of their own
    assert host.returncode == -signal.SIGTERM, text
    assert {"first": "slept"} in lines and {"second": "slept"} in lines, text
    assert "SIGTERM: draining and stopping 2 pool(s)" in text
    assert "WorkerCrashed" not in text and "Traceback" not in text and "ERROR" not in text
    await wait_for(lambda: not any(pid_alive(pid) for pid in report["workers"]))
