"""Pool layer: execute(retry=, breaker=), and retry() and breaker.guard() around any code, at
exact virtual times (jitter "none", or a seeded random source)."""

from __future__ import annotations

import functools
import itertools
import random

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import faults, open_fake_pool
from tests.pool.adapters import TRIES, Tools

Clock = trio.testing.MockClock


def notes(exc: BaseException) -> list[str]:
    return list(getattr(exc, "__notes__", []))


async def test_queue_timeouts_are_retried_after_the_backoff(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1, queue_timeout=1) as pool:
        policy = sp.RetryPolicy(attempts=3, initial=1, jitter="none")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.execute, "sleep", {"seconds": 3.5})
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            with pytest.raises(sp.QueueTimeout):
                await pool.execute("echo", {"value": 7})
            assert trio.current_time() - start == 1
            # From 1 s: 1 s in the queue, 1 s of backoff, then it waits for the worker.
            assert await pool.execute("echo", {"value": 7}, retry=policy) == 7
            assert trio.current_time() - start == pytest.approx(3.5)


async def test_remote_errors_are_retried_only_when_listed(autojump_clock: Clock) -> None:
    TRIES.clear()
    async with open_fake_pool(Tools, size=2) as pool:
        by_name = sp.RetryPolicy(attempts=3, initial=0.5, jitter="none", retry_on=("ValueError",))
        start = trio.current_time()
        args = {"key": "named", "failures": 2, "value": "ok"}
        assert await pool.execute("flaky", args, retry=by_name) == "ok"
        assert TRIES["named"] == 3 and trio.current_time() - start == pytest.approx(1.5)

        with pytest.raises(sp.RemoteError) as info:
            await pool.execute("flaky", {"key": "unlisted", "failures": 1}, retry=sp.RetryPolicy())
        assert TRIES["unlisted"] == 1 and notes(info.value) == []

        by_class = sp.RetryPolicy(attempts=2, initial=0, retry_on=sp.RemoteError)
        with pytest.raises(sp.RemoteError) as info:
            await pool.execute("flaky", {"key": "class", "failures": 5}, retry=by_class)
        assert TRIES["class"] == 2
        assert notes(info.value) == [
            "snakepit_trio: gave up after 2 attempts in 0s: no attempts left"
        ]


async def test_a_call_that_may_have_run_is_retried_only_if_idempotent_within_the_budget(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Tools, size=1, timeout=1) as pool:
        policy = sp.RetryPolicy(attempts=10, initial=0.5, factor=1, jitter="none", budget=2.5)
        start = trio.current_time()
        with pytest.raises(sp.RequestTimeout) as info:
            await pool.execute("sleep", {"seconds": 5}, retry=policy)
        assert info.value.started and trio.current_time() - start == 1
        assert notes(info.value) == [
            "snakepit_trio: not retried: the call may have run, and it is not idempotent "
            "(idempotent=True allows it)"
        ]

        start = trio.current_time()
        with pytest.raises(sp.RequestTimeout) as info:
            await pool.execute("sleep", {"seconds": 5}, retry=policy, idempotent=True)
        # Attempts at 0 and 1.5 s, each with the pool's 1 s timeout; the budget ends at 2.5.
        assert trio.current_time() - start == pytest.approx(2.5)
        assert "gave up after 2 attempts" in notes(info.value)[0]
        assert "could not start before the deadline" in notes(info.value)[0]


async def test_an_explicit_timeout_bounds_every_attempt_and_wait(autojump_clock: Clock) -> None:
    TRIES.clear()
    async with open_fake_pool(Tools, size=1) as pool:
        policy = sp.RetryPolicy(
            attempts=10, initial=0.25, factor=1, jitter="none", retry_on="ValueError"
        )
        start = trio.current_time()
        with pytest.raises(sp.RemoteError):
            await pool.execute("flaky", {"key": "t", "failures": 99}, timeout=1, retry=policy)
        # Attempts at 0, 0.25, 0.5 and 0.75 s: the next would start at the deadline.
        assert TRIES["t"] == 4 and trio.current_time() - start == pytest.approx(0.75)

        start = trio.current_time()
        with pytest.raises(sp.RequestTimeout) as info:
            await pool.execute("sleep", {"seconds": 5}, timeout=2, retry=policy, idempotent=True)
        assert info.value.timeout == 2 and trio.current_time() - start == 2


async def test_idempotent_calls_are_retried_after_a_worker_crash(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1, max_retries=0) as pool:
        policy = sp.RetryPolicy(attempts=2, initial=1, jitter="none")
        outcome: list[object] = []

        async def call(idempotent: bool) -> None:
            try:
                outcome.append(
                    await pool.execute("sleep", {"seconds": 2}, retry=policy, idempotent=idempotent)
                )
            except sp.WorkerCrashed as exc:
                outcome.append(exc)

        for idempotent in (False, True):
            outcome.clear()
            await trio.sleep(1)  # the replacement of the last crash is up
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, idempotent)
                await trio.testing.wait_all_tasks_blocked()
                crashed_at = trio.current_time()
                faults(pool).crash()
            if idempotent:  # 1 s of backoff, then the 2 s call on the replacement
                assert outcome == ["slept"]
                assert trio.current_time() - crashed_at == pytest.approx(3)
            else:
                [error] = outcome
                assert isinstance(error, sp.WorkerCrashed)
                assert "not idempotent" in notes(error)[0]
                assert trio.current_time() == crashed_at


async def test_an_unhealthy_pool_is_retried_when_its_probe_may_run(autojump_clock: Clock) -> None:
    async def crashing() -> None:
        with pytest.raises(sp.WorkerCrashed):
            await pool.execute("sleep", {"seconds": 9})

    async with open_fake_pool(Tools, size=1, crash_threshold=1, probe_after=5) as pool:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(crashing)
            await trio.testing.wait_all_tasks_blocked()
            faults(pool).crash()
        crashed_at = trio.current_time()
        with pytest.raises(sp.PoolUnhealthy):
            await pool.execute("echo", {"value": 3})
        policy = sp.RetryPolicy(attempts=2, initial=0.1, jitter="none")
        assert await pool.execute("echo", {"value": 3}, retry=policy) == 3
        assert trio.current_time() - crashed_at == pytest.approx(5)
        assert pool.stats().health == "healthy"


async def test_the_breaker_opens_after_failures_and_a_probe_closes_it(
    autojump_clock: Clock,
) -> None:
    TRIES.clear()
    changes: list[tuple[str, str]] = []
    breaker = sp.CircuitBreaker(
        failure_threshold=2,
        reset_timeout=5,
        name="flaky",
        on_state_change=lambda b, old, new: changes.append((old, new)),
    )
    async with open_fake_pool(Tools, size=2) as pool:
        for _ in range(2):
            with pytest.raises(sp.RemoteError):
                await pool.execute("flaky", {"key": "k", "failures": 9}, breaker=breaker)
        assert breaker.state == "open" and changes == [("closed", "open")]
        await trio.sleep(1)
        requests = pool.stats().requests
        with pytest.raises(sp.CircuitOpen) as info:
            await pool.execute("echo", breaker=breaker)
        assert info.value.name == "flaky" and info.value.retry_in == pytest.approx(4)
        assert "circuit 'flaky' is open" in str(info.value)
        assert pool.stats().requests == requests, "a refused call is never sent"

        await trio.sleep(4)
        assert breaker.state == "half_open" and breaker.retry_in == 0
        async with trio.open_nursery() as nursery:
            probe = functools.partial(pool.execute, "sleep", {"seconds": 1}, breaker=breaker)
            nursery.start_soon(probe)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(sp.CircuitOpen) as info:  # one probe at a time
                await pool.execute("echo", breaker=breaker)
            assert info.value.retry_in == 0 and "probe calls are running" in str(info.value)
        assert breaker.state == "closed"
        assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
        assert repr(breaker) == "<CircuitBreaker 'flaky' closed failures=0/2 reset_timeout=5>"


async def test_what_the_breaker_counts(autojump_clock: Clock) -> None:
    TRIES.clear()
    breaker = sp.CircuitBreaker(failure_threshold=1, failure_on=sp.RequestTimeout)
    async with open_fake_pool(Tools, size=1) as pool:
        # The tool's own error, a bad call and a cancelled one say nothing of the worker.
        with pytest.raises(sp.RemoteError):
            await pool.execute("flaky", {"key": "w", "failures": 1}, breaker=breaker)
        with pytest.raises(sp.UnknownTool):
            await pool.execute("nope", breaker=breaker)
        with trio.move_on_after(1):
            await pool.execute("sleep", {"seconds": 2}, breaker=breaker)
        assert breaker.state == "closed"
        with pytest.raises(sp.RequestTimeout):
            await pool.execute("sleep", {"seconds": 2}, timeout=1, breaker=breaker)
        assert breaker.state == "open"


async def test_retry_waits_for_an_open_breaker_when_the_budget_allows(
    autojump_clock: Clock,
) -> None:
    breaker = sp.CircuitBreaker(failure_threshold=1, reset_timeout=3)
    async with open_fake_pool(Tools, size=1) as pool:
        with pytest.raises(sp.RemoteError):
            await pool.execute("fail", {"message": "x"}, breaker=breaker)
        start = trio.current_time()
        policy = sp.RetryPolicy(attempts=2, initial=0.1, jitter="none", budget=10)
        assert await pool.execute("echo", {"value": 1}, retry=policy, breaker=breaker) == 1
        assert trio.current_time() - start == pytest.approx(3)

        with pytest.raises(sp.RemoteError):
            await pool.execute("fail", {"message": "x"}, breaker=breaker)
        start = trio.current_time()
        with pytest.raises(sp.CircuitOpen) as info:
            await pool.execute("echo", retry=sp.RetryPolicy(budget=2), breaker=breaker)
        assert trio.current_time() == start and "before the deadline" in notes(info.value)[0]


async def test_session_calls_take_retry_and_breaker(autojump_clock: Clock) -> None:
    TRIES.clear()
    breaker = sp.CircuitBreaker(failure_threshold=5)
    policy = sp.RetryPolicy(attempts=3, initial=0.5, jitter="none", retry_on="ValueError")
    async with open_fake_pool(Tools, size=2) as pool:
        async with pool.session() as session:
            start = trio.current_time()
            args = {"key": "s", "failures": 2, "value": "v"}
            assert await session.execute("flaky", args, retry=policy, breaker=breaker) == "v"
            assert trio.current_time() - start == pytest.approx(1.5)
            assert breaker.state == "closed" and breaker.failures == 0
        args = {"key": "s2", "failures": 1, "value": "w"}
        assert await pool.execute_in_session("t", "flaky", args, retry=policy) == "w"


# --- around any code -----------------------------------------------------------------------
class Flaky(Exception):
    pass


async def test_retry_around_any_awaitable_with_a_seeded_jitter(autojump_clock: Clock) -> None:
    calls: list[float] = []
    retried: list[tuple[int, type[BaseException], float]] = []

    async def op(x: int) -> int:
        calls.append(trio.current_time())
        if len(calls) < 4:
            raise Flaky
        return 2 * x

    policy = sp.RetryPolicy(
        attempts=5,
        initial=1,
        factor=2,
        max_delay=3,
        retry_on=Flaky,
        rng=random.Random(7).random,
        on_retry=lambda attempt, error, delay: retried.append((attempt, type(error), delay)),
    )
    assert await sp.retry(policy, op, 21) == 42
    rng = random.Random(7)
    expected = [1 * rng.random(), 2 * rng.random(), 3 * rng.random()]
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps == pytest.approx(expected)
    assert retried == [(1, Flaky, expected[0]), (2, Flaky, expected[1]), (3, Flaky, expected[2])]


async def test_retry_leaves_other_errors_and_cancellation_alone(
    autojump_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def op() -> None:
        nonlocal calls
        calls += 1
        raise Flaky if calls % 2 else KeyError("k")

    def broken(attempt: int, error: BaseException, delay: float) -> None:
        raise RuntimeError("a broken callback")

    policy = sp.RetryPolicy(
        attempts=5, initial=10, max_delay=10, jitter="none", retry_on=Flaky, on_retry=broken
    )
    with pytest.raises(KeyError) as info:
        await sp.retry(policy, op)
    assert calls == 2 and "gave up after 2 attempts" in notes(info.value)[0]
    assert "on_retry callback" in caplog.text and "a broken callback" in caplog.text

    calls = 0
    start = trio.current_time()
    with trio.move_on_after(5):  # cancelled in the 10 s backoff
        await sp.retry(policy, op)
    assert calls == 1 and trio.current_time() - start == 5

    calls = 0
    budget = sp.RetryPolicy(attempts=5, initial=1, jitter="none", retry_on=Flaky, budget=0.5)
    with pytest.raises(Flaky) as flaky:
        await sp.retry(budget, op)
    assert notes(flaky.value) == [
        "snakepit_trio: not retried: the next attempt could not start before the deadline"
    ]


async def test_a_breaker_guards_any_block(
    autojump_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(b: sp.CircuitBreaker, old: str, new: str) -> None:
        raise RuntimeError("a broken callback")

    breaker = sp.CircuitBreaker(failure_threshold=1, reset_timeout=2, on_state_change=broken)
    with pytest.raises(OSError):
        async with breaker.guard():
            raise OSError("down")
    assert breaker.state == "open" and "on_state_change callback" in caplog.text
    with pytest.raises(sp.CircuitOpen) as info:
        async with breaker.guard():
            pytest.fail("an open breaker runs nothing")
    assert info.value.retry_in == 2 and info.value.name == ""
    assert "the circuit is open" in str(info.value)
    await trio.sleep(2)
    with trio.move_on_after(1):  # a cancelled probe proves nothing: the next one may run
        async with breaker.guard():
            await trio.sleep_forever()
    async with breaker.guard():
        pass
    assert breaker.state == "closed"


async def test_a_wait_that_overshoots_the_deadline_starts_no_attempt(
    autojump_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real_sleep = trio.sleep

    async def op() -> None:
        nonlocal calls
        calls += 1
        raise Flaky

    async def late(seconds: float) -> None:
        await real_sleep(seconds + 1)  # a sleep that wakes late, as a loaded machine's can

    monkeypatch.setattr(trio, "sleep", late)
    policy = sp.RetryPolicy(attempts=5, initial=1, jitter="none", retry_on=Flaky, budget=1.5)
    with pytest.raises(Flaky) as info:
        await sp.retry(policy, op)
    assert calls == 1 and notes(info.value) == ["snakepit_trio: not retried: the deadline passed"]


async def test_retries_and_breaker_changes_of_pool_calls_are_telemetry_events(
    autojump_clock: Clock,
) -> None:
    TRIES.clear()
    seen: list[tuple[str, dict[str, float], dict[str, object]]] = []
    breaker = sp.CircuitBreaker(failure_threshold=2, reset_timeout=5, name="backend")
    policy = sp.RetryPolicy(attempts=3, initial=0.5, jitter="none", retry_on=("ValueError",))
    async with open_fake_pool(Tools, size=1) as pool:
        pool.telemetry.attach(
            "test",
            ["retry.*", "breaker.*"],
            lambda e: seen.append((e.name, e.measurements, e.metadata)),
        )
        args = {"key": "events", "failures": 2, "value": "ok"}
        assert await pool.execute("flaky", args, retry=policy) == "ok"
        assert [(n, m) for n, m, _ in seen] == [
            ("retry.attempt", {"attempt": 1, "backoff": 0.5}),
            ("retry.attempt", {"attempt": 2, "backoff": 1.0}),
        ]
        assert seen[0][2] == {
            "tool": "flaky",
            "error_type": "RemoteError",
            "pool": pool.config.name,
        }
        seen.clear()
        with pytest.raises(sp.RemoteError):
            await pool.execute("flaky", {"key": "gone", "failures": 9}, retry=policy)
        assert [n for n, _, _ in seen] == ["retry.attempt", "retry.attempt", "retry.exhausted"]
        seen.clear()
        for _ in range(2):
            with pytest.raises(sp.RemoteError):
                await pool.execute("flaky", {"key": "b", "failures": 9}, breaker=breaker)
        with pytest.raises(sp.CircuitOpen):
            await pool.execute("echo", breaker=breaker)
        await trio.sleep(5)
        await pool.execute("echo", breaker=breaker)
        assert [n for n, _, _ in seen] == [
            "breaker.opened",
            "breaker.rejected",
            "breaker.half_open",  # the probe
            "breaker.closed",
        ]
        assert all(m["breaker"] == "backend" for _, _, m in seen)
