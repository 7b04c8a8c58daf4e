"""End-to-end (real workers): a cancel storm leaves the pool idle, whole and serving.

Thousands of calls (sync tools in threads that ignore cancellation for a while, async
tools, async tools that ignore it, streams of both kinds) are cancelled or time out at
moments drawn from the seed. Checked afterwards: nothing queued or in flight, every
worker accepting and running nothing, the pool at its size; no call ran twice; none that
never started failed with a killed worker; and every later call succeeds, on every
worker. How fast the pool serves afterwards is checked on the virtual clock
(test_pool_cancel_storm.py), never here.
"""

from __future__ import annotations

import collections
import random
from pathlib import Path
from typing import Any

import pytest
import trio

import snakepit_trio as sp
from tests.adapters.adversarial import LOG
from tests.adversarial import storm
from tests.adversarial.conftest import SCALE, Seed, scaled

STORM = "tests.adapters.adversarial:Storm"
SIZE = 2


def _quick(rng: random.Random) -> float:
    return rng.choice([0.0, 0.0005, 0.002, 0.01, 0.03])


MOVES = [
    storm.Move("spin", False, lambda rng: {"seconds": _quick(rng)}),
    storm.Move("sleep", False, lambda rng: {"seconds": _quick(rng)}),
    storm.Move("stubborn", False, lambda rng: {"seconds": _quick(rng)}),
    storm.Move("echo", False, lambda rng: {"value": rng.randrange(1000)}),
    storm.Move("count", True, lambda rng: {"n": rng.randrange(200)}),
    storm.Move("ticks", True, lambda rng: {"n": rng.randrange(10), "every": _quick(rng) / 5}),
]

VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "max_requests": {"max_requests": 25},
    "kill_on_cancel": {"kill_on_cancel": True, "cancel_grace": 0.01},
}


def _starts(log: Path) -> collections.Counter[str]:
    return collections.Counter(log.read_text().split()) if log.exists() else collections.Counter()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
async def test_after_a_cancel_storm_every_worker_serves_again(
    tmp_path: Path, seed: Seed, variant: str
) -> None:
    rng = seed.rng
    log = tmp_path / "started"
    calls = storm.plan(rng, MOVES, scaled(1500), span=2 * SCALE, give_up_within=0.03)
    killing = variant == "kill_on_cancel"
    with trio.fail_after(120 * SCALE):
        async with sp.open_pool(
            STORM,
            size=SIZE,
            worker_capacity=rng.choice([1, 2]),
            env={LOG: str(log)},
            crash_threshold=None,
            restart=sp.RestartPolicy(initial=0.01, max_delay=0.1),
            **VARIANTS[variant],
        ) as pool:
            ledger = await storm.run(pool, calls, crashes_allowed=killing)
            await storm.settle(pool, SIZE, timeout=60, replay=seed.replay)
            stats = pool.stats()
            served = collections.Counter(
                await _gather(pool, [("pid", {"token": f"after-{i}"}) for i in range(200)])
            )
            await storm.settle(pool, SIZE, timeout=60, replay=seed.replay)
            live = {w.pid for w in pool.workers()}
    summary = f"{seed.replay}: {ledger.summary()}"
    assert not ledger.failures, f"{summary}: {ledger.failures[:10]}"
    started = _starts(log)
    ran_twice = [token for token, n in started.items() if n > 1]
    assert not ran_twice, f"{summary}: ran twice: {ran_twice[:10]}"
    never_started = [token for token in ledger.crashed if token not in started]
    assert not never_started, f"{summary}: WorkerCrashed but never started: {never_started[:10]}"
    assert sum(ledger.outcomes.values()) == len(calls), summary
    if not killing:
        assert stats.crashes == 0, f"{summary}: {stats}"
    # Every later call succeeded (_gather raises otherwise), and each worker took some.
    assert sum(served.values()) == 200, summary
    if variant != "max_requests":  # recycled: some served by workers gone since
        assert set(served) == live, f"{summary}: served by {served}, live {live}"
    else:
        assert len(served) >= SIZE, f"{summary}: served by {served}"


async def _gather(pool: sp.Pool, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Run ``calls`` eight at a time; their results in order."""
    results: list[Any] = [None] * len(calls)
    limit = trio.Semaphore(8)

    async def one(i: int, tool: str, args: dict[str, Any]) -> None:
        async with limit:
            results[i] = await pool.execute(tool, args)

    async with trio.open_nursery() as nursery:
        for i, (tool, args) in enumerate(calls):
            nursery.start_soon(one, i, tool, args)
    return results
