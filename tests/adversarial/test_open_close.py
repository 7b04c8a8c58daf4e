"""End-to-end (real workers): opening and closing pools over and over leaks nothing.

Each round opens a pool shaped at random from the seed (transport, start method, size),
uses it (a call, sometimes a payload large enough for shared memory, sometimes a crash),
and closes it in one of the ways a program does: normally, by cancelling the block while
calls run, or by an exception from the block. Measured after warm-up rounds and again at
the end: the host's open file descriptors, its threads, its live child processes, and the
``/dev/shm`` entries of the pools it opened. None may grow with the number of rounds.
"""

from __future__ import annotations

import gc
import os
import random
import threading

import psutil
import pytest
import trio

import snakepit_trio as sp
from snakepit_trio._shared import _shm
from tests.adversarial.conftest import Seed, scaled
from tests.helpers import wait_for

STORM = "tests.adapters.adversarial:Storm"
WARM_UP = 2  # rounds before the baseline: imports, caches and the registry's first use
MB = 2**20


class Boom(Exception):
    """Raised from a pool's block to close it."""


def _snapshot(prefixes: list[str]) -> dict[str, int]:
    gc.collect()  # descriptors of objects other tests left for the collector are not ours
    children = [p for p in psutil.Process().children(recursive=True) if p.status() != "zombie"]
    shm = [n for n in os.listdir(_shm.SHM_DIR) if n.startswith(tuple(prefixes))] if prefixes else []
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "threads": threading.active_count(),
        "children": len(children),
        "shm": len(shm),
    }


def _running(pool: sp.Pool) -> bool:
    stats = pool.stats()
    return stats.in_flight > 0 and stats.in_flight + stats.queued == 4


async def _round(rng: random.Random, prefixes: list[str]) -> None:
    options = {
        "transport": rng.choice(["local", "local", "grpc"]),
        "start_method": rng.choice(["zygote", "zygote", "zygote", "spawn"]),
        "size": rng.randint(1, 3),
        "crash_threshold": None,
        # A cancelled block may leave calls running in workers (see test_hanging_lifecycle:
        # the cancels do not all leave), which then take the grace to stop.
        "shutdown_grace": 0.5,
    }
    ending = rng.choice(["normal", "cancelled", "exception"])
    try:
        with trio.CancelScope() as scope:
            async with sp.open_pool(STORM, **options) as pool:
                prefixes.append(pool._engine.payloads._prefix)
                assert await pool.execute("echo", {"value": 1}) == 1
                if rng.random() < 0.5:  # through shared memory, both ways
                    assert len(await pool.execute("echo", {"value": b"x" * 2 * MB})) == 2 * MB
                if rng.random() < 0.3:
                    with pytest.raises(sp.WorkerCrashed):
                        await pool.execute("crash", {"code": 3})
                if ending == "normal":
                    return
                async with trio.open_nursery() as nursery:
                    for _ in range(4):  # running when the block ends
                        nursery.start_soon(pool.execute, "sleep", {"seconds": 30})
                    await wait_for(lambda: _running(pool))
                    if ending == "cancelled":
                        scope.cancel()
                        await trio.sleep_forever()
                    raise Boom
    except* Boom:
        assert ending == "exception"
    except* (sp.PoolClosed, sp.WorkerCrashed):
        pass  # the calls the closing pool ended


async def test_opening_and_closing_pools_leaks_nothing(seed: Seed) -> None:
    rounds = scaled(10)
    prefixes: list[str] = []
    with trio.fail_after(60 + 20 * rounds):
        for _ in range(WARM_UP):
            await _round(seed.rng, prefixes)
        before = _snapshot(prefixes)
        for _ in range(rounds):
            await _round(seed.rng, prefixes)
        after = _snapshot(prefixes)
    print(f"{rounds} rounds: {before} -> {after}")
    grown = {k: after[k] - before[k] for k in before if after[k] > before[k]}
    # A helper thread or descriptor may be open at either moment (a thread cache, the
    # registry's file, what earlier tests in the same process left); a leak grows with the
    # rounds: at least one per round that leaks.
    slack = max(2, rounds // 2)
    leaked = {k: n for k, n in grown.items() if n > slack}
    assert not leaked, f"{seed.replay}: {before} -> {after}"
    assert after["children"] == 0 and after["shm"] == 0, f"{seed.replay}: {after}"
