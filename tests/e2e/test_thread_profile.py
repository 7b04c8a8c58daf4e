"""End-to-end: workers that run calls in threads (``worker_capacity`` > 1, ``profile="thread"``).

A thread-safe adapter keeps its invariants under 8 calls at once; ``exclusive`` tools never
overlap; one capacity limits sync, async and streaming calls together, also when the pool
sends calls ahead; ``profile="thread"`` refuses an adapter that does not declare
``thread_safe``; workers report whether their interpreter has a GIL. These run on GIL builds
here; the ``freethreaded`` test runs only on an interpreter without one.
"""

from __future__ import annotations

import random
import sys

import pytest
import trio

import snakepit_trio as sp

BANK = "tests.adapters.threads:Bank"
COUNTED = "tests.adapters.threads:Counted"


async def _transfers(pool: sp.Pool, count: int, concurrency: int, seed: int) -> None:
    rng = random.Random(seed)
    moves = [
        (rng.randrange(8), rng.randrange(8), rng.randrange(1, 400), rng.choice([0, 0.001, 0.005]))
        for _ in range(count)
    ]
    limit = trio.Semaphore(concurrency)

    async def move(source: int, target: int, amount: int, work: float) -> None:
        async with limit:
            await pool.execute(
                "transfer", {"source": source, "target": target, "amount": amount, "work": work}
            )

    async with trio.open_nursery() as nursery:
        for m in moves:
            nursery.start_soon(move, *m)


async def _check_bank(pool: sp.Pool) -> dict[str, object]:
    audit = await pool.execute("audit")
    assert sum(audit["balances"]) == 8 * 1000, audit
    assert min(audit["balances"]) >= 0, audit
    return audit  # type: ignore[no-any-return]


async def test_a_thread_safe_adapter_keeps_its_invariants_under_8_way_concurrency() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(BANK, size=1, worker_capacity=8, profile="thread") as pool:
            [info] = pool.workers()
            assert info.thread_safe is True
            assert info.gil_enabled is getattr(sys, "_is_gil_enabled", lambda: True)()
            await _transfers(pool, count=400, concurrency=8, seed=7)
            audit = await _check_bank(pool)
            assert audit["peak"] == 8  # eight transfers really ran at once


async def test_exclusive_tools_never_overlap_beside_other_calls() -> None:
    with trio.fail_after(60):
        async with sp.open_pool(COUNTED, size=1, worker_capacity=4) as pool:
            async with trio.open_nursery() as nursery:
                for _ in range(12):
                    nursery.start_soon(pool.execute, "exclusive_sync", {"seconds": 0.01})
                    nursery.start_soon(pool.execute, "exclusive_async", {"seconds": 0.01})
                    nursery.start_soon(pool.execute, "sync_work", {"seconds": 0.01})
            counts = await pool.execute("counts")
            assert counts["overlaps"] == 0, counts
            assert counts["peak"] >= 2, counts  # other calls ran beside them


async def test_one_capacity_limits_every_kind_of_call_even_when_sent_ahead() -> None:
    with trio.fail_after(60):
        # prefetch_budget: the pool sends calls of up to 10 s ahead, beyond the capacity,
        # so the worker's own limit is what holds them back.
        async with sp.open_pool(
            COUNTED, size=1, worker_capacity=2, prefetch=32, prefetch_budget=10.0
        ) as pool:
            for tool in ("sync_work", "async_work"):
                await pool.execute(tool, {"seconds": 0.001})  # run times known: prefetch

            async def stream(tool: str) -> None:
                async with pool.stream(tool, {"n": 3, "seconds": 0.003}) as chunks:
                    assert [c async for c in chunks] == [0, 1, 2]

            ahead = 0
            async with trio.open_nursery() as nursery:
                for i in range(40):
                    kind = ("sync_work", "async_work", "sync_stream", "async_stream")[i % 4]
                    if kind.endswith("stream"):
                        nursery.start_soon(stream, kind)
                    else:
                        nursery.start_soon(pool.execute, kind, {"seconds": 0.005})
                await trio.testing.wait_all_tasks_blocked()
                ahead = pool.workers()[0].in_flight
            counts = await pool.execute("counts")
            assert ahead > 2  # the worker held more calls than it may run
            assert counts["peak"] == 2, counts


async def test_the_thread_profile_requires_the_adapters_declaration() -> None:
    with trio.fail_after(30):
        with pytest.raises(sp.WorkerStartError) as info:
            async with sp.open_pool(
                "tests.adapters.threads:Undeclared", size=1, worker_capacity=4, profile="thread"
            ):
                raise AssertionError("open_pool must not yield")  # pragma: no cover
        first = str(info.value).splitlines()[0]
        assert "does not declare thread_safe = True" in first
        assert "profile='thread'" in str(info.value)


@pytest.mark.freethreaded
@pytest.mark.skipif(
    getattr(sys, "_is_gil_enabled", lambda: True)(),
    reason="needs a free-threaded interpreter (python3.14t); this one has a GIL",
)
async def test_without_a_gil_threads_run_the_bank_in_parallel() -> None:
    with trio.fail_after(120):
        async with sp.open_pool(BANK, size=1, worker_capacity=8, profile="thread") as pool:
            [info] = pool.workers()
            assert info.gil_enabled is False  # nothing the adapter imported turned it on
            await _transfers(pool, count=2000, concurrency=8, seed=11)
            await _check_bank(pool)
