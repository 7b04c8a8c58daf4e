"""Pool layer (virtual clock): after a cancel storm the pool is idle, whole and as fast as new.

Thousands of calls (async tools, tools that ignore cancellation for a while, streams of
both kinds) are cancelled or time out at moments drawn from the seed. Then the pool must
hold nothing (no call queued or in flight, every worker accepting and running nothing, no
extra or missing worker), and serve at full speed: a burst of calls of a fixed virtual
length ends at exactly the times it ends on an untouched pool. The storm runs plain, with
``max_requests`` (workers recycled in the middle of it) and with ``kill_on_cancel`` (stuck
workers killed while calls wait on them): every call that never began to run must still
succeed or fail only by its own cancellation or timeout.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import open_fake_pool
from tests.adapters.adversarial import STARTED, Storm
from tests.adversarial import storm
from tests.adversarial.conftest import Seed, scaled

Clock = trio.testing.MockClock
SIZE = 3
BURST_SECONDS = 1.0  # each call of the full-speed probe


def _duration(rng: random.Random) -> float:
    return rng.choice([0.0, 0.001, 0.01, 0.05, 0.2, 0.5])


MOVES = [
    storm.Move("sleep", False, lambda rng: {"seconds": _duration(rng)}),
    storm.Move("stubborn", False, lambda rng: {"seconds": _duration(rng)}),
    storm.Move("echo", False, lambda rng: {"value": rng.randrange(1000)}),
    storm.Move("ticks", True, lambda rng: {"n": rng.randrange(8), "every": _duration(rng) / 4}),
    storm.Move("count", True, lambda rng: {"n": rng.randrange(50)}),
]


async def burst(pool: sp.Pool, n: int) -> list[float]:
    """``n`` calls of BURST_SECONDS at once: when each ended, after the burst began."""
    start = trio.current_time()
    ends: list[float] = []

    async def one() -> None:
        assert await pool.execute("sleep", {"seconds": BURST_SECONDS}) == "slept"
        ends.append(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)
    return sorted(ends)


VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "max_requests": {"max_requests": 7},
    "kill_on_cancel": {"kill_on_cancel": True, "cancel_grace": 0.1},
    "kill_on_cancel at once": {"kill_on_cancel": True, "cancel_grace": 0.0},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
async def test_after_a_cancel_storm_the_pool_is_idle_and_serves_at_full_speed(
    autojump_clock: Clock, seed: Seed, variant: str
) -> None:
    rng = seed.rng
    capacity = rng.choice([1, 2])
    options: dict[str, Any] = {
        "worker_capacity": capacity,
        "crash_threshold": None,
        "restart": sp.RestartPolicy(initial=0.01, max_delay=0.1),
        **VARIANTS[variant],
    }
    n = 4 * SIZE * capacity
    # An untouched pool without recycling: with max_requests a swap lets the worker going
    # finish its call while its replacement starts the next, so a burst may end sooner.
    plain = {k: v for k, v in options.items() if k != "max_requests"}
    async with open_fake_pool(Storm, size=SIZE, **plain) as untouched:
        expected = await burst(untouched, n)
    assert expected[-1] == 4 * BURST_SECONDS  # n calls over SIZE * capacity slots

    calls = storm.plan(rng, MOVES, scaled(1200), span=scaled(3), give_up_within=0.3)
    STARTED.clear()
    async with open_fake_pool(Storm, size=SIZE, **options) as pool:
        ledger = await storm.run(pool, calls, crashes_allowed=variant.startswith("kill_on_cancel"))
        assert not ledger.failures, f"{seed.replay}: {ledger.failures[:10]}"
        ran_twice = [token for token, times in STARTED.items() if times > 1]
        assert not ran_twice, f"{seed.replay}: calls ran twice: {ran_twice[:10]}"
        # A crash may end calls that ran on the killed worker, never one that had not begun.
        never_started = [t for t in ledger.crashed if t not in STARTED]
        assert not never_started, (
            f"{seed.replay}: calls failed with WorkerCrashed although they never started: "
            f"{never_started[:10]} ({ledger.summary()})"
        )
        await storm.settle(pool, SIZE, timeout=30, replay=seed.replay)
        if variant == "plain":
            assert pool.stats().crashes == 0, seed.replay
        ends = await burst(pool, n)
        if variant == "max_requests":
            slower = [
                (end, then) for end, then in zip(ends, expected, strict=True) if end > then + 1e-9
            ]
            assert not slower, f"{seed.replay}: {slower} ({ledger.summary()})"
        else:
            assert ends == pytest.approx(expected, abs=1e-9), f"{seed.replay}: {ledger.summary()}"
        await storm.settle(pool, SIZE, timeout=30, replay=seed.replay)
