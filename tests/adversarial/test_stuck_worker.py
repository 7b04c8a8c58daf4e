"""End-to-end (real workers): a sync tool stuck in its thread, ignoring cancellation, under load.

- Cancelled (timed out) and still running: its worker is held. Under a seeded load of
  short calls, none runs there while it is stuck (calls that were waiting there are taken
  back and run elsewhere), every one succeeds; once the stuck call ends, the worker
  serves again.
- The same with ``kill_on_cancel=True``: the worker is killed and replaced after
  ``cancel_grace``, and no call of the load fails with it (none had started there).
- Not cancelled, just long: calls prefetched behind it move to other workers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

import snakepit_trio as sp
from tests.adversarial.conftest import SCALE, Seed, scaled
from tests.helpers import wait_for

STORM = "tests.adapters.adversarial:Storm"


async def _load(
    pool: sp.Pool, rng: random.Random, calls: int, until: Callable[[], bool] = lambda: True
) -> list[int]:
    """At least ``calls`` short calls from 16 clients, going on until ``until()`` holds; the
    pid of the worker that ran each."""
    pids: list[int] = []

    async def client(crng: random.Random) -> None:
        while len(pids) < calls or not until():
            tool = crng.choice(["pid", "spin", "sleep"])
            await pool.execute(tool, {} if tool == "pid" else {"seconds": 0.001})
            pids.append(await pool.execute("pid"))

    async with trio.open_nursery() as nursery:
        for _ in range(16):
            nursery.start_soon(client, random.Random(rng.random()))
    return pids


async def _warm_up(pool: sp.Pool) -> None:
    """Short calls on every worker, so that the pool prefetches calls onto them."""
    async with trio.open_nursery() as nursery:
        for _ in range(40):
            nursery.start_soon(pool.execute, "echo", {"value": 1})


async def _stuck(pool: sp.Pool, release: Path, timeout: float | None) -> None:
    args = {"path": str(release), "token": "stuck"}
    if timeout is None:
        assert await pool.execute("stuck_until", args) == "released"
        return
    with pytest.raises(sp.RequestTimeout):
        await pool.execute("stuck_until", args, timeout=timeout)


def _stuck_worker(pool: sp.Pool) -> sp.WorkerInfo | None:
    running = [w for w in pool.workers() if any(c.tool == "stuck_until" for c in w.calls)]
    return running[0] if running else None


@pytest.mark.parametrize("cancelled", [True, False], ids=["timed-out", "long"])
async def test_no_call_waits_behind_a_stuck_sync_call(
    tmp_path: Path, seed: Seed, cancelled: bool
) -> None:
    release = tmp_path / "release"
    with trio.fail_after(120 * SCALE):
        async with sp.open_pool(STORM, size=3) as pool:
            await _warm_up(pool)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stuck, pool, release, 0.2 if cancelled else None)
                await wait_for(lambda: _stuck_worker(pool) is not None)
                stuck = _stuck_worker(pool)
                assert stuck is not None
                if cancelled:  # its caller gave up: it holds its worker
                    await wait_for(lambda: not _accepting(pool, stuck.pid))
                pids = await _load(pool, seed.rng, scaled(400))
                assert stuck.pid not in pids, f"{seed.replay}: a call ran behind the stuck one"
                assert _stuck_worker(pool) is not None  # it still runs: the load did not wait
                release.touch()
            await wait_for(lambda: _accepting(pool, stuck.pid))
            assert stuck.pid in await _load(pool, seed.rng, 200), seed.replay  # serves again
            stats = pool.stats()
    assert stats.crashes == 0 and stats.errors == (1 if cancelled else 0), seed.replay


def _accepting(pool: sp.Pool, pid: int) -> bool:
    return any(w.pid == pid and w.accepting for w in pool.workers())


async def test_kill_on_cancel_replaces_the_stuck_worker_and_fails_no_other_call(
    tmp_path: Path, seed: Seed
) -> None:
    release = tmp_path / "never"  # it is killed first
    with trio.fail_after(120 * SCALE):
        async with sp.open_pool(STORM, size=2, kill_on_cancel=True, cancel_grace=0.2) as pool:
            await _warm_up(pool)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stuck, pool, release, 0.2)
                await wait_for(lambda: _stuck_worker(pool) is not None)
                stuck = _stuck_worker(pool)
                assert stuck is not None
                # Load from before the timeout until the stuck worker is gone and replaced.
                pids = await _load(pool, seed.rng, scaled(400), lambda: _replaced(pool, stuck.pid))
            pids += await _load(pool, seed.rng, 200)
            stats = pool.stats()
    assert stuck.pid not in pids, seed.replay
    assert stats.crashes == 1 and stats.errors == 1, f"{seed.replay}: {stats}"  # the stuck one


def _replaced(pool: sp.Pool, pid: int) -> bool:
    workers = pool.workers()
    return len(workers) == 2 and pid not in {w.pid for w in workers}
