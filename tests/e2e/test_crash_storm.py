"""Crash storms: capped backoff, the crash breaker (PoolUnhealthy), retry budget, causes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from tests.helpers import wait_for

ECHO = "tests.adapters.basic:Echo"
FLAKY = "tests.adapters.broken:StartsWhenAllowed"
FAST_RESTART = sp.RestartPolicy(initial=0.05, factor=2.0, max_delay=0.2)


async def test_a_poison_idempotent_call_is_retried_once_not_on_every_worker() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=4, crash_threshold=None) as pool:
            with pytest.raises(sp.WorkerCrashed):
                await pool.execute("crash", {"code": 9}, idempotent=True)
            assert pool.stats().crashes == 2  # the first run and one retry, not 4
            await wait_for(lambda: pool.stats().workers == 4)


async def test_crash_storm_opens_the_breaker_and_a_probe_closes_it(tmp_path: Path) -> None:
    block = tmp_path / "block-start"
    with trio.fail_after(60):
        async with sp.open_pool(
            FLAKY,
            size=2,
            env={"SNAKEPIT_TEST_BLOCK_START": str(block)},
            crash_threshold=3,
            crash_window=30.0,
            probe_after=0.5,
            restart=FAST_RESTART,
        ) as pool:
            block.touch()  # from now on, replacements fail to start
            for _ in range(2):
                with pytest.raises(sp.WorkerCrashed):
                    await pool.execute("crash")
            await wait_for(lambda: pool.stats().health == "unhealthy")
            assert pool.stats().workers == 0

            # Fail fast: no waiting for a worker that cannot start. The refusal comes before
            # the call's first checkpoint, so it cannot have waited for anything (a slot, a
            # timer, a start); a clock would only say how busy this machine is.
            with trio.testing.assert_no_checkpoints(), pytest.raises(sp.PoolUnhealthy) as info:
                await pool.execute("ok")
            assert info.value.crashes >= 3 and "start" in info.value.last_cause
            assert "crash_threshold" in str(info.value)

            # Restarts go on while the breaker is open (each start fails; the capped backoff
            # itself is a pool-layer test, so the bound here is generous).
            restarts = pool.stats().restarts
            await wait_for(lambda: pool.stats().restarts >= restarts + 3, timeout=20)

            block.unlink()  # the cause is fixed: a replacement starts
            await wait_for(lambda: pool.stats().workers >= 1, timeout=10)
            # The next call after probe_after is the probe; its answer heals the pool.
            with trio.fail_after(10):
                while True:
                    try:
                        assert await pool.execute("ok") == "ok"
                        break
                    except sp.PoolUnhealthy as exc:
                        await trio.sleep(exc.retry_in)  # the documented wait, not a guess
            assert pool.stats().health == "healthy"
            await wait_for(lambda: pool.stats().workers == 2)
            assert await pool.execute("ok") == "ok"


async def test_calls_queued_when_the_breaker_opens_fail_fast(tmp_path: Path) -> None:
    crash_now = tmp_path / "crash-now"
    with trio.fail_after(30):
        async with sp.open_pool(FLAKY, size=1, crash_threshold=1, probe_after=30) as pool:
            outcomes: list[BaseException] = []

            async def call(tool: str, args: dict[str, object]) -> None:
                try:
                    await pool.execute(tool, args)
                except sp.SnakepitError as exc:
                    outcomes.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, "crash_when_exists", {"path": str(crash_now)})
                await wait_for(lambda: pool.stats().in_flight == 1)
                for _ in range(3):
                    nursery.start_soon(call, "ok", {})
                await wait_for(lambda: pool.stats().queued == 3)
                crash_now.touch()  # only now, with the three calls queued, does it crash
            kinds = sorted(type(e).__name__ for e in outcomes)
            assert kinds == ["PoolUnhealthy"] * 3 + ["WorkerCrashed"]
            assert pool.stats().health == "unhealthy"


async def test_crash_causes_are_classified() -> None:
    with trio.fail_after(30):
        async with sp.open_pool(ECHO, size=1, crash_threshold=None) as pool:
            with pytest.raises(sp.WorkerCrashed) as info:
                await pool.execute("crash", {"code": 4})
            assert info.value.cause == "exit" and info.value.exit_code == 4

            await wait_for(lambda: pool.stats().workers == 1)
            await pool.execute("grow", {"megabytes": 64})
            [worker] = pool._engine.workers.values()
            await wait_for(lambda: (worker.last_rss or 0) > 64 * 2**20)

            async def kill_when_running() -> None:
                await wait_for(lambda: pool.stats().in_flight == 1)
                os.kill(worker.pid, signal.SIGKILL)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(kill_when_running)
                with pytest.raises(sp.WorkerCrashed) as info:
                    await pool.execute("sleep", {"seconds": 20})
            err = info.value
            assert err.cause == "signal" and err.signal == signal.SIGKILL
            assert err.last_rss is not None and err.last_rss > 64 * 2**20
            assert "not sent by the pool" in str(err) and "OOM" in str(err)
            assert "last RSS" in str(err)


@pytest.fixture(autouse=True)
def _allow_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # StartsWhenAllowed needs the variable; a path that never exists lets it start.
    monkeypatch.setenv("SNAKEPIT_TEST_BLOCK_START", str(tmp_path / "never"))
