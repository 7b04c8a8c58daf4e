"""Pool layer (virtual clock): revocations racing completions, and crashes mid-revocation.

The watchdog takes back (REVOKE) calls waiting on a worker that completed nothing for a
tick. Here the workers' answers are held back at random (``faults(pool).delay``), so the
host revokes calls the worker has already finished or started, and answers cross revokes
on the way; and workers are crashed while revokes are out. Checked: every call ends once,
with its own result (or ``WorkerCrashed`` where a crash may have taken it); no call runs
twice unless idempotent (then at most ``1 + max_retries`` times); idempotent calls
give up only after repeated crashes; the pool ends idle and whole.
"""

from __future__ import annotations

import random
from collections import Counter

import attrs
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import faults, open_fake_pool
from tests.adapters.adversarial import STARTED, Storm
from tests.adversarial import storm
from tests.adversarial.conftest import Seed, scaled

Clock = trio.testing.MockClock
SIZE = 3
MAX_RETRIES = 10


@attrs.define
class Outcomes:
    counts: Counter[str] = attrs.Factory(Counter)
    failures: list[str] = attrs.Factory(list)
    crashed: list[str] = attrs.Factory(list)  # idempotent calls that gave up


async def _call(
    pool: sp.Pool, rng: random.Random, token: str, idempotent: bool, out: Outcomes
) -> None:
    seconds = rng.choice([0.0, 0.001, 0.01, 0.1, 0.4])
    start = rng.uniform(0, 3)
    await trio.sleep(start)
    try:
        got = await pool.execute(
            "sleep", {"seconds": seconds, "token": token}, idempotent=idempotent
        )
    except sp.WorkerCrashed:
        if idempotent:
            out.crashed.append(token)  # checked below: only after 1 + max_retries runs
        out.counts["crashed"] += 1
        return
    except Exception as exc:
        out.failures.append(f"{token}: {exc!r}")
        return
    if got != "slept":
        out.failures.append(f"{token}: wrong result {got!r}")
    out.counts["ok"] += 1


async def _hold_back_answers(pool: sp.Pool, rng: random.Random) -> None:
    """Now and then, make one worker's answers arrive late (or on time again)."""
    while True:
        await trio.sleep(rng.uniform(0.01, 0.2))
        live = sorted(w.id for w in pool.workers())
        if live:
            faults(pool).delay(rng.choice([0.0, 0.0, 0.03, 0.08, 0.3]), rng.choice(live))


def _revoking(pool: sp.Pool) -> list[str]:
    """Workers with a revoke out that they have not answered."""
    core = pool._engine.core
    return sorted(
        ws.id for ws in core.workers.values() if any(c.revoking for c in ws.calls.values())
    )


async def _crash_while_revoking(pool: sp.Pool, rng: random.Random, crashes: list[str]) -> None:
    """Crash a worker that has revokes out (or, failing that, any worker) now and then."""
    while True:
        await trio.sleep(rng.uniform(0.05, 0.3))
        victims = _revoking(pool) or sorted(w.id for w in pool.workers())
        if victims:
            crashes.append(faults(pool).crash(rng.choice(victims)))


async def _run(seed: Seed, *, crash: bool) -> None:
    rng = seed.rng
    calls = scaled(600)
    plan = [(f"call-{i}", crash and rng.random() < 0.5) for i in range(calls)]
    STARTED.clear()
    out = Outcomes()
    crashes: list[str] = []
    async with open_fake_pool(
        Storm,
        size=SIZE,
        worker_capacity=rng.choice([1, 2]),
        max_retries=MAX_RETRIES,
        crash_threshold=None,
        restart=sp.RestartPolicy(initial=0.01, max_delay=0.05),
    ) as pool:
        async with trio.open_nursery() as chaos:
            chaos.start_soon(_hold_back_answers, pool, random.Random(rng.random()))
            if crash:
                chaos.start_soon(_crash_while_revoking, pool, random.Random(rng.random()), crashes)
            async with trio.open_nursery() as nursery:
                for token, idempotent in plan:
                    nursery.start_soon(
                        _call, pool, random.Random(rng.random()), token, idempotent, out
                    )
            chaos.cancel_scope.cancel()
        faults(pool).delay(0)
        await storm.settle(pool, SIZE, timeout=30, replay=seed.replay)
        stats = pool.stats()
    assert not out.failures, f"{seed.replay}: {out.failures[:10]}"
    idempotent = {token for token, flag in plan if flag}
    too_often = [
        (token, n)
        for token, n in STARTED.items()
        if n > (1 + MAX_RETRIES if token in idempotent else 1)
    ]
    assert not too_often, f"{seed.replay}: calls ran too often: {too_often[:10]}"
    # An idempotent call gives up only once 1 + max_retries workers died with it on them
    # (it may not have started on each: a call waiting there counts too).
    gave_up = [(token, STARTED[token]) for token in out.crashed]
    assert all(0 < n <= 1 + MAX_RETRIES for _, n in gave_up), f"{seed.replay}: {gave_up}"
    assert sum(out.counts.values()) == calls, seed.replay
    if crash:
        assert crashes and stats.crashes == len(crashes), f"{seed.replay}: {crashes}"
    else:
        assert out.counts["ok"] == calls and stats.crashes == 0, f"{seed.replay}: {out.counts}"


async def test_revocations_racing_completions_never_run_a_call_twice(
    autojump_clock: Clock, seed: Seed
) -> None:
    await _run(seed, crash=False)


async def test_crashes_while_revokes_are_out_lose_no_call(
    autojump_clock: Clock, seed: Seed
) -> None:
    await _run(seed, crash=True)
