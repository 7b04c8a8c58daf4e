"""Workers placed by ``RayLauncher`` on a two-node Ray cluster on this machine.

The cluster (tests/ray_support.py) is Ray's own: a head and a second raylet, each a process
tree of its own, so where a worker runs is visible to the OS: a worker's parent is its
actor, and the actor's parent is the raylet of the node Ray placed it on. The contract suite
runs over Ray too (``SNAKEPIT_TRIO_CONTRACT_RAY=1``, ``nox -s ray``).
"""

from __future__ import annotations

import os
import pathlib
import signal
import textwrap

import psutil
import pytest
import trio

import snakepit_trio as sp
from tests.conftest import pid_alive
from tests.helpers import host_process, wait_for
from tests.ray_support import ROOT, ray_launcher

ray = pytest.importorskip("ray", reason="Ray is not installed: nox -s ray runs these tests")

ADAPTER = "tests.adapters.contract:Contract"
pytestmark = pytest.mark.usefixtures("ray_session")


def raylet_of(worker_pid: int) -> int:
    """The pid of the raylet whose actor started this worker."""
    actor = psutil.Process(worker_pid).parent()
    assert actor is not None and "WorkerSlot" in " ".join(actor.cmdline()), actor
    raylet = actor.parent()
    assert raylet is not None and "raylet" in raylet.name(), raylet
    return raylet.pid


def raylets(cluster: object) -> list[int]:
    """The raylet pids of the cluster's nodes: the head's first."""
    return [n.all_processes["raylet"][0].process.pid for n in cluster.list_all_nodes()]  # type: ignore[attr-defined]


def our_actors() -> list[str]:
    return [n for n in ray.util.list_named_actors() if n.startswith("snakepit_trio/")]


async def test_calls_streams_and_sessions_reach_workers_on_ray() -> None:
    async with sp.open_pool(ADAPTER, size=2, launcher=ray_launcher(), pythonpath=[ROOT]) as pool:
        assert await pool.execute("add", {"a": 2, "b": 3}) == 5
        async with pool.stream("count", {"n": 5}) as stream:
            chunks = [c async for c in stream]
        assert chunks == [0, 1, 2, 3, 4]
        async with pool.session() as session:
            first = await session.execute("incr")
            second = await session.execute("incr")
        assert second["count"] == first["count"] + 1
        pids = {w.pid for w in pool.workers()}
        assert len(pids) == 2 and await pool.execute("pid") in pids
        for pid in pids:
            raylet_of(pid)  # each is an ordinary worker process under a Ray actor
        assert len(our_actors()) == 2
    await wait_for(lambda: not our_actors(), timeout=60)


async def test_a_killed_actor_is_a_disconnected_worker_and_is_replaced() -> None:
    async with sp.open_pool(ADAPTER, size=1, launcher=ray_launcher(), pythonpath=[ROOT]) as pool:
        (worker,) = pool.workers()
        (name,) = our_actors()
        crashed: list[sp.WorkerCrashed] = []

        async def call() -> None:
            try:
                await pool.execute("sleep", {"seconds": 60})
            except sp.WorkerCrashed as exc:
                crashed.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call)
            await wait_for(lambda: pool.workers()[0].in_flight == 1, timeout=60)
            await trio.to_thread.run_sync(lambda: ray.kill(ray.get_actor(name)))
        assert [exc.cause for exc in crashed] == ["disconnected"], crashed
        await wait_for(lambda: not pid_alive(worker.pid), timeout=60)
        with trio.fail_after(60):
            replacement = await pool.execute("pid")  # waits for the new actor's worker
        assert replacement != worker.pid
        assert our_actors() != [name]


async def test_spread_puts_a_worker_on_each_node(ray_session: object) -> None:
    # One CPU each, on nodes of one CPU each: SPREAD is Ray's best effort, and without a
    # reservation Ray may put both on one node.
    launcher = ray_launcher(strategy="SPREAD", num_cpus=1)
    async with sp.open_pool(ADAPTER, size=2, launcher=launcher, pythonpath=[ROOT]) as pool:
        placed = sorted(raylet_of(w.pid) for w in pool.workers())
    assert placed == sorted(raylets(ray_session))


async def test_a_strategy_object_reaches_ray(ray_session: object) -> None:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    second = ray_session.list_all_nodes()[1]  # type: ignore[attr-defined]
    strategy = NodeAffinitySchedulingStrategy(node_id=second.node_id, soft=False)
    launcher = ray_launcher(strategy=strategy)
    async with sp.open_pool(ADAPTER, size=2, launcher=launcher, pythonpath=[ROOT]) as pool:
        assert {raylet_of(w.pid) for w in pool.workers()} == {raylets(ray_session)[1]}


async def test_custom_resources_choose_the_node(ray_session: object) -> None:
    launcher = ray_launcher(resources={"n2": 1})
    async with sp.open_pool(ADAPTER, size=1, launcher=launcher, pythonpath=[ROOT]) as pool:
        (worker,) = pool.workers()
        assert raylet_of(worker.pid) == raylets(ray_session)[1]  # the node offering n2


async def test_code_shipped_by_runtime_env_stays_importable(tmp_path: pathlib.Path) -> None:
    """The pool's pythonpath goes before the PYTHONPATH Ray's runtime_env gave the actor."""
    (tmp_path / "shipped.py").write_text("def triple(x: int) -> int:\n    return 3 * x\n")
    launcher = ray_launcher(
        runtime_env={"env_vars": {"PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"}}
    )
    async with sp.open_pool(
        tools=["shipped:triple"], size=1, launcher=launcher, pythonpath=[ROOT]
    ) as pool:
        assert await pool.execute("triple", {"x": 5}) == 15


async def test_no_room_on_the_cluster_fails_the_start_and_leaves_no_actor() -> None:
    launcher = ray_launcher(resources={"absent": 1})
    with pytest.raises(sp.WorkerStartError, match="resources=\\{'absent': 1"):
        async with sp.open_pool(
            ADAPTER, size=1, launcher=launcher, pythonpath=[ROOT], startup_timeout=2
        ):
            pass  # pragma: no cover - the pool does not open
    await wait_for(lambda: not our_actors(), timeout=60)


async def test_a_worker_that_cannot_start_says_why() -> None:
    with pytest.raises(sp.WorkerStartError, match="no attribute 'Missing'"):
        async with sp.open_pool(
            "tests.adapters.contract:Missing", size=1, launcher=ray_launcher(), pythonpath=[ROOT]
        ):
            pass  # pragma: no cover - the pool does not open
    await wait_for(lambda: not our_actors(), timeout=60)


HOST = textwrap.dedent(
    """
    import json, sys, trio
    import snakepit_trio as sp
    from tests.ray_support import ROOT, ray_launcher

    async def main():
        launcher = ray_launcher(address=sys.argv[1])  # joins the cluster from its own thread
        async with sp.open_pool("tests.adapters.contract:Contract", size=2,
                                launcher=launcher, pythonpath=[ROOT]) as pool:
            print(json.dumps([w.pid for w in pool.workers()]), flush=True)
            await pool.execute("sleep", {"seconds": 600})

    trio.run(main)
    """
)


async def test_a_killed_host_takes_its_actors_and_workers_with_it(ray_session: object) -> None:
    address = ray_session.address  # type: ignore[attr-defined]
    async with host_process(HOST, address) as (host, workers):
        actors = [psutil.Process(pid).ppid() for pid in workers]
        assert len(workers) == 2 and all(pid_alive(p) for p in workers + actors)
        host.send_signal(signal.SIGKILL)
        await host.wait()
    # Ray ends a dead driver's actors; each worker sees its actor's pipe close.
    await wait_for(lambda: not any(pid_alive(p) for p in workers + actors), timeout=60)
