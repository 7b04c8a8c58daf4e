"""End-to-end: workers pinned to devices (``devices``) and their thread budget
(``threads_per_worker``), in fresh (``spawn``) and forked (``zygote``) workers.

No GPU is needed: a device uuid is only a string the pool writes into each worker's mask
(``CUDA_VISIBLE_DEVICES``) and ``SNAKEPIT_TRIO_DEVICE``, which the workers report. What a
real CUDA runtime makes of it is outside these tests. Threads are read back with
threadpoolctl from the OpenBLAS numpy loaded (in the template, for forked workers).
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
from typing import Any

import psutil
import pytest
import trio

import snakepit_trio as sp
from snakepit_trio.hardware import detect
from tests.helpers import wait_for

TRANSPORT_AGNOSTIC = True  # see conftest.py

PLACED = "tests.adapters.placement:Placed"
A = "GPU-aaaaaaaa-0000-4000-8000-000000000000"
B = "GPU-bbbbbbbb-0000-4000-8000-000000000000"
C = "GPU-cccccccc-0000-4000-8000-000000000000"
START_METHODS = ["spawn", "zygote"]
# OpenBLAS caps what it reads from the environment at the number of CPUs.
two_cpus = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs")


@pytest.fixture(autouse=True)
def no_outer_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)


async def each_worker(pool: sp.Pool, tool: str) -> dict[int, Any]:
    """``tool``'s answer from every ready worker, by pid. A new session binds to the worker
    with the fewest sessions, so sessions held open reach each worker in turn; one that is
    briefly not taking calls (a loaded machine delays its heartbeat answer) is reached by a
    later session. Bounded by the caller's deadline."""
    want = {w.pid for w in pool.workers() if w.state in ("ready", "busy")}
    by_pid: dict[int, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        while set(by_pid) != want:
            session = await stack.enter_async_context(pool.session())
            answer = await session.execute(tool)
            by_pid[answer["pid"]] = answer
    return by_pid


def replaced(pool: sp.Pool, dead: int, size: int) -> bool:
    ready = [w for w in pool.workers() if w.state == "ready"]
    return len(ready) == size and dead not in {w.pid for w in ready}


@pytest.mark.parametrize("start_method", START_METHODS)
async def test_workers_are_pinned_by_slot_and_a_replacement_keeps_its_slots_device(
    start_method: str,
) -> None:
    with trio.fail_after(60):
        # No heartbeats: on a loaded machine one could replace a second worker meanwhile.
        async with sp.open_pool(
            PLACED, size=4, devices=[A, B], start_method=start_method, heartbeat_timeout=None
        ) as pool:
            where = await each_worker(pool, "where")
            devices = {w.pid: w.device for w in pool.workers()}
            masks = collections.Counter(w["env"]["CUDA_VISIBLE_DEVICES"] for w in where.values())
            assert masks == {A: 2, B: 2}
            for pid, answer in where.items():
                uuid = answer["env"]["CUDA_VISIBLE_DEVICES"]
                assert devices[pid] == answer["env"]["SNAKEPIT_TRIO_DEVICE"] == f"cuda:{uuid}"
                # The adapter sees its device from __init__ on, and placement() says it.
                assert answer["at_init"] == answer["env"]
                for seen in (answer["placement_at_init"], answer["placement_at_initialize"]):
                    assert seen == {
                        "device": f"cuda:{uuid}",
                        "kind": "cuda",
                        "uuid": uuid,
                        "threads": 1,
                    }

            if start_method == "zygote":
                # The template holds no device and runs one thread per library; each fork
                # takes its own before its adapter runs.
                (template,) = {psutil.Process(pid).ppid() for pid in where}
                env = psutil.Process(template).environ()
                assert "SNAKEPIT_TRIO_DEVICE" not in env and "CUDA_VISIBLE_DEVICES" not in env
                assert env["OPENBLAS_NUM_THREADS"] == "1"

            victim = next(iter(where))
            os.kill(victim, signal.SIGKILL)
            await wait_for(lambda: replaced(pool, victim, 4), timeout=30)
            after = await each_worker(pool, "where")
            (newcomer,) = set(after) - set(where)
            assert after[newcomer]["env"] == where[victim]["env"]  # the same device
            assert {w.pid: w.device for w in pool.workers()}[newcomer] == devices[victim]


@pytest.mark.parametrize("start_method", START_METHODS)
async def test_only_devices_the_outer_mask_lets_through_are_used(
    start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{C},{A}")  # the host may use C and A
    with trio.fail_after(60):
        async with sp.open_pool(PLACED, size=3, devices="cuda", start_method=start_method) as pool:
            where = await each_worker(pool, "where")
            masks = collections.Counter(w["env"]["CUDA_VISIBLE_DEVICES"] for w in where.values())
            assert masks == {C: 2, A: 1}  # slots 0 and 2 on C, the mask's first
        # A device outside the mask is refused before any worker starts.
        with pytest.raises(ValueError, match=f"devices names '{B}', which this host cannot use"):
            async with sp.open_pool(PLACED, size=1, devices=[A, B], start_method=start_method):
                raise AssertionError("open_pool must not yield")  # pragma: no cover


async def test_an_env_option_mask_bounds_the_plan_too() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(
            PLACED, size=2, devices="cuda", env={"CUDA_VISIBLE_DEVICES": B}, start_method="spawn"
        ) as pool:
            where = await each_worker(pool, "where")
            assert {w["env"]["CUDA_VISIBLE_DEVICES"] for w in where.values()} == {B}


async def test_without_devices_workers_inherit_the_hosts_mask(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", B)
    monkeypatch.setenv("SNAKEPIT_TRIO_DEVICE", "cuda:stale")  # as in a pool's own worker
    with trio.fail_after(60):
        async with sp.open_pool(PLACED, size=1, start_method="zygote") as pool:
            (answer,) = (await each_worker(pool, "where")).values()
            assert answer["env"]["CUDA_VISIBLE_DEVICES"] == B
            assert answer["env"]["SNAKEPIT_TRIO_DEVICE"] is None
            assert pool.workers()[0].device is None


def blas_threads(answer: dict[str, Any]) -> int:
    (openblas,) = [p for p in answer["pools"] if p["internal_api"] == "openblas"]
    return int(openblas["num_threads"])


@two_cpus
@pytest.mark.parametrize("start_method", START_METHODS)
async def test_threads_per_worker_reaches_blas_loaded_before_the_fork(start_method: str) -> None:
    with trio.fail_after(60):
        async with sp.open_pool(
            PLACED, size=2, threads_per_worker=2, start_method=start_method
        ) as pool:
            for answer in (await each_worker(pool, "threads")).values():
                assert blas_threads(answer) == 2
                assert answer["env"] == {
                    "OMP_NUM_THREADS": "2",
                    "OPENBLAS_NUM_THREADS": "2",
                    "MKL_NUM_THREADS": "2",
                    "SNAKEPIT_TRIO_THREADS": "2",
                }


@two_cpus
@pytest.mark.parametrize("start_method", START_METHODS)
async def test_the_users_thread_variables_win(
    start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OMP_NUM_THREADS is what OpenBLAS falls back to: the pool sets no OpenBLAS variable
    # over it, and a forked worker's OpenBLAS (loaded in the template with one thread)
    # gets the user's 2 as a fresh one would.
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with trio.fail_after(60):
        async with sp.open_pool(
            PLACED, size=1, threads_per_worker=1, start_method=start_method
        ) as pool:
            (answer,) = (await each_worker(pool, "threads")).values()
            assert blas_threads(answer) == 2
            assert answer["env"]["OMP_NUM_THREADS"] == "2"
            assert answer["env"]["OPENBLAS_NUM_THREADS"] is None
            assert answer["env"]["MKL_NUM_THREADS"] is None


async def test_auto_shares_this_process_cpus_among_the_workers() -> None:
    expected = max(1, detect().cpu.usable // 2)
    with trio.fail_after(60):
        async with sp.open_pool(
            PLACED, size=1, worker_capacity=2, threads_per_worker="auto", start_method="zygote"
        ) as pool:
            (answer,) = (await each_worker(pool, "threads")).values()
            assert answer["env"]["SNAKEPIT_TRIO_THREADS"] == str(expected)
            assert blas_threads(answer) == expected


async def test_none_leaves_the_thread_variables_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    with trio.fail_after(60):
        async with sp.open_pool(
            PLACED, size=1, threads_per_worker=None, start_method="spawn"
        ) as pool:
            (answer,) = (await each_worker(pool, "threads")).values()
            assert set(answer["env"].values()) == {None}
