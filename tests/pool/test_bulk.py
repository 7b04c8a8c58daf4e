"""Pool layer: map, as_completed and execute_batch at exact virtual times: how many calls run
at once, how much of the input is read, order, the first failure, cancellation, the queue."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

import snakepit_trio as sp
from snakepit_trio.testing import faults, open_fake_pool
from tests.helpers import wait_for
from tests.pool.adapters import EVENTS, RUNNING, TRIES, Tools

Clock = trio.testing.MockClock


@pytest.fixture(autouse=True)
def fresh_counters() -> None:
    RUNNING.update(now=0, peak=0)
    EVENTS.clear()
    TRIES.clear()


def gauged(values: list[Any], seconds: float = 1.0) -> list[dict[str, Any]]:
    return [{"value": v, "seconds": seconds} for v in values]


async def test_map_runs_at_most_max_concurrency_calls_and_keeps_input_order(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Tools, size=2, worker_capacity=4) as pool:
        start = trio.current_time()
        async with pool.map("gauge", gauged(list(range(10))), max_concurrency=3) as results:
            got = [r async for r in results]
        assert got == list(range(10))
        assert RUNNING["peak"] == 3
        assert trio.current_time() - start == 4  # rounds of 3, 3, 3 and 1 one-second calls
        # Default: twice the pool's slots (2 workers x 4).
        async with pool.map("gauge", gauged(list(range(40)))) as results:
            assert [r async for r in results] == list(range(40))
        assert RUNNING["peak"] == 8


async def test_unordered_results_come_as_calls_finish(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=3) as pool:
        items = [{"value": v, "seconds": s} for v, s in (("slow", 3), ("fast", 1), ("mid", 2))]
        async with pool.map("gauge", items, ordered=False) as results:
            assert [r async for r in results] == ["fast", "mid", "slow"]
        async with pool.map("gauge", items) as results:
            assert [r async for r in results] == ["slow", "fast", "mid"]


async def test_an_endless_input_is_read_only_as_fast_as_it_is_consumed(
    autojump_clock: Clock,
) -> None:
    produced = 0

    async def endless() -> AsyncIterator[dict[str, Any]]:
        nonlocal produced
        while True:
            produced += 1
            yield {"value": produced, "seconds": 0.5}

    async with open_fake_pool(Tools, size=4) as pool:
        got = []
        async with (
            contextlib.aclosing(endless()) as source,
            pool.map("gauge", source, max_concurrency=4) as results,
        ):
            async for r in results:
                got.append(r)
                if len(got) == 10:
                    break
        assert got == list(range(1, 11))
        assert produced <= 10 + 2 * 4, produced
        await trio.testing.wait_all_tasks_blocked()
        assert pool.stats().in_flight == 0 and RUNNING["now"] == 0
        # A sync generator too: one item is never taken ahead of the room for it.
        taken = []

        def numbers() -> Any:
            for i in range(1000):
                taken.append(i)
                yield {"value": i, "seconds": 0.5}

        async with pool.map("gauge", numbers(), max_concurrency=2) as results:
            async for r in results:
                if r == 4:
                    break
        assert len(taken) <= 5 + 2 * 2


async def test_the_first_failure_cancels_the_rest_and_is_raised_as_itself(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Tools, size=4) as pool:
        items = [{"value": "a", "seconds": 5}, {"value": "fail", "seconds": 1}]
        items += [{"value": i, "seconds": 5} for i in range(10)]
        start = trio.current_time()
        with pytest.raises(sp.RemoteError) as info:
            async with pool.map("gauge", items, max_concurrency=3) as results:
                async for _ in results:
                    pytest.fail("the first result comes after the failure")
        assert type(info.value) is sp.RemoteError and "gauge asked to fail" in str(info.value)
        assert trio.current_time() - start == 1
        # The two calls running beside it were cancelled in their workers; no more started.
        assert {v for kind, v in EVENTS if kind == "gauge cancelled"} == {0, "a"}
        await trio.testing.wait_all_tasks_blocked()
        assert pool.stats().in_flight == 0 and pool.stats().requests == 3


async def test_return_exceptions_yields_each_error_in_its_place(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=2) as pool:
        items = [{"value": 1}, {"value": "fail"}, {"nope": 3}, {"value": 4}]
        async with pool.map("gauge", items, return_exceptions=True) as results:
            got = [r async for r in results]
        assert got[0] == 1 and got[3] == 4
        assert isinstance(got[1], sp.RemoteError) and isinstance(got[2], sp.InvalidArguments)


async def test_an_input_that_fails_is_raised_even_with_return_exceptions(
    autojump_clock: Clock,
) -> None:
    async def broken() -> AsyncIterator[dict[str, Any]]:
        yield {"value": 1, "seconds": 5}
        await trio.sleep(1)
        raise LookupError("the input broke")

    async with open_fake_pool(Tools, size=2) as pool:
        with pytest.raises(LookupError, match="the input broke"):
            async with (
                contextlib.aclosing(broken()) as source,
                pool.map("gauge", source, return_exceptions=True) as results,
            ):
                async for _ in results:
                    pass
        assert EVENTS == [("gauge cancelled", 1)]


async def test_an_input_that_cannot_be_iterated_is_raised_as_itself(autojump_clock: Clock) -> None:
    class Broken:
        def __iter__(self) -> Any:
            raise OSError("no items today")

    async with open_fake_pool(Tools, size=1) as pool:
        with pytest.raises(OSError, match="no items today"):
            async with pool.map("echo", Broken()) as results:
                async for _ in results:
                    pass


async def test_cancelling_the_consumer_cancels_the_calls_in_flight(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=2) as pool:
        with trio.move_on_after(1.5) as scope:
            async with pool.map("gauge", gauged(list(range(6)), 1), max_concurrency=2) as results:
                async for _ in results:
                    pass
        assert scope.cancelled_caught
        assert sorted(v for kind, v in EVENTS if kind == "gauge cancelled") == [2, 3]
        await trio.testing.wait_all_tasks_blocked()
        assert pool.stats().in_flight == 0


async def test_what_the_block_raises_comes_out_as_itself(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=2) as pool:
        with pytest.raises(KeyError):
            async with pool.map("gauge", gauged([1, 2, 3], 10)):
                await trio.testing.wait_all_tasks_blocked()
                raise KeyError("mine")
        # Two ran (two workers) and were cancelled there; the third left the queue unrun.
        assert len([v for kind, v in EVENTS if kind == "gauge cancelled"]) == 2
        await trio.testing.wait_all_tasks_blocked()
        assert pool.stats().in_flight == 0 and pool.stats().queued == 0


async def test_map_never_fills_the_queue_by_itself(autojump_clock: Clock) -> None:
    for max_queue in (0, 2):
        async with open_fake_pool(Tools, size=1, max_queue=max_queue) as pool:
            async with pool.map("gauge", gauged(list(range(12)), 0.1), max_concurrency=8) as rs:
                assert [r async for r in rs] == list(range(12))
            assert pool.stats().saturated == 0


async def test_as_completed_gives_each_call_with_its_result(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=3) as pool:
        slow = ("gauge", {"value": "slow", "seconds": 2})
        fast = ("sleep", {"seconds": 1})
        bad = ("gauge",)
        async with pool.as_completed([slow, fast, bad], return_exceptions=True) as done:
            got = [(call, result) async for call, result in done]
        assert got[1:] == [(fast, "slept"), (slow, "slow")]
        assert got[0][0] == bad and isinstance(got[0][1], TypeError)
        assert "each call must be a (tool, args) pair" in str(got[0][1])


async def test_execute_batch_returns_results_in_input_order(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=2) as pool:
        calls = [("gauge", {"value": i, "seconds": 3 - i}) for i in range(3)]
        assert await pool.execute_batch(calls, max_concurrency=3) == [0, 1, 2]
        calls.append(("fail", {"message": "no"}))
        got = await pool.execute_batch(calls, return_exceptions=True)
        assert got[:3] == [0, 1, 2] and isinstance(got[3], sp.RemoteError)
        with pytest.raises(sp.RemoteError):
            await pool.execute_batch(calls)


async def test_a_session_map_runs_on_its_worker(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=3) as pool, pool.session() as session:
        async with pool.map("whoami", [None] * 6, session=session) as results:
            assert len({r async for r in results}) == 1
        async with session.map("whoami", [{}] * 6, max_concurrency=2) as results:
            assert len({r async for r in results}) == 1
        got = await session.execute_batch([("serial", None)] * 4)
        assert len(set(got)) == 1
        async with session.as_completed([("echo", {"value": 1})]) as done:
            assert [r async for r in done] == [(("echo", {"value": 1}), 1)]


async def test_retry_and_breaker_apply_to_each_call(autojump_clock: Clock) -> None:
    policy = sp.RetryPolicy(attempts=3, initial=1, jitter="none", retry_on="ValueError")
    breaker = sp.CircuitBreaker(failure_threshold=100)
    async with open_fake_pool(Tools, size=2) as pool:
        items = [{"key": f"k{i}", "failures": i % 3, "value": i} for i in range(6)]
        start = trio.current_time()
        async with pool.map("flaky", items, retry=policy, breaker=breaker) as results:
            assert [r async for r in results] == list(range(6))
        assert trio.current_time() - start == 3  # the items that fail twice: 1 + 2 s
        assert breaker.failures == 0


BAD_MAP: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"tool": "nope"}, sp.UnknownTool, "unknown tool 'nope'"),
    ({"tool": "count"}, sp.InvalidArguments, "this tool streams"),
    ({"tool": 5}, TypeError, "tool must be a str"),
    ({"args": {"value": 1}}, TypeError, "args must be an iterable with one item per call"),
    ({"args": "abc"}, TypeError, "args must be an iterable with one item per call"),
    ({"args": 5}, TypeError, "args must be an iterable or an async iterable"),
    ({"max_concurrency": 0}, ValueError, "max_concurrency must be a whole number of calls"),
    ({"max_concurrency": 2.0}, TypeError, "max_concurrency must be"),
    ({"ordered": 1}, TypeError, "ordered must be True or False"),
    ({"return_exceptions": None}, TypeError, "return_exceptions must be True or False"),
    ({"timeout": -1}, ValueError, "timeout must be"),
    ({"idempotent": "yes"}, TypeError, "idempotent must be True or False"),
    ({"kill_on_cancel": 1}, TypeError, "kill_on_cancel must be"),
    ({"retry": 3}, TypeError, "retry must be a snakepit_trio.RetryPolicy"),
    ({"breaker": 3}, TypeError, "breaker must be a snakepit_trio.CircuitBreaker"),
    ({"session": "s"}, TypeError, "session must be a Session"),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD_MAP)
async def test_bad_arguments_are_named_before_anything_is_read(
    autojump_clock: Clock, change: dict[str, Any], error: type[Exception], message: str
) -> None:
    read = []

    def items() -> Any:
        read.append(1)
        yield {"value": 1}

    async with open_fake_pool(Tools, size=1) as pool:
        call: dict[str, Any] = {"tool": "echo", "args": items(), **change}
        with pytest.raises(error, match=message):
            async with pool.map(**call) as results:
                pytest.fail(f"entered with {results!r}")
        if "tool" not in change and "args" not in change:
            pairs = [("echo", {"value": 1})]
            other = {k: v for k, v in change.items() if k != "ordered"}
            if other:
                with pytest.raises(error, match=message):
                    await pool.execute_batch(pairs, **other)
                with pytest.raises(error, match=message):
                    async with pool.as_completed(pairs, **other):
                        pytest.fail("entered")
        assert read == [] and pool.stats().requests == 0


async def test_a_session_of_another_pool_is_refused(autojump_clock: Clock) -> None:
    async with (
        open_fake_pool(Tools, size=1) as one,
        open_fake_pool(Tools, size=1) as two,
        two.session("theirs") as theirs,
    ):
        with pytest.raises(ValueError, match="session 'theirs' belongs to another pool"):
            one.map("echo", [{}], session=theirs)


async def test_a_closed_pool_refuses_a_map(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        pass
    with pytest.raises(sp.PoolClosed):
        async with pool.map("echo", [{}]):
            pytest.fail("entered")


async def test_results_of_a_finished_map_end_at_once(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        async with pool.map("echo", []) as results:
            assert [r async for r in results] == []
            with pytest.raises(StopAsyncIteration):
                await results.__anext__()
        next_call = functools.partial(pool.execute, "echo", {"value": 2})
        assert await next_call() == 2


# --- chunks: many items per call ----------------------------------------------------------------
async def test_chunks_run_their_items_one_after_another(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=2) as pool:
        start = trio.current_time()
        items = gauged(list(range(10)))
        async with pool.map("gauge", items, chunksize=4, max_concurrency=2) as results:
            assert [r async for r in results] == list(range(10))
        # Chunks of 4, 4 and 2 one-second items, two calls at a time: 4 s, then 2 s.
        assert trio.current_time() - start == 6
        assert RUNNING["peak"] == 2 and pool.stats().requests == 3
        async with pool.map("gauge", items, chunksize=3, ordered=False) as results:
            assert sorted([r async for r in results]) == list(range(10))


async def test_chunks_go_only_to_workers_that_say_they_run_them(autojump_clock: Clock) -> None:
    """A worker names "batch" among its capabilities; one that does not (another runtime)
    is never sent a chunk: the caller is told to use single calls."""
    async with open_fake_pool(Tools, size=1) as pool:
        _no_batches(pool)
        with pytest.raises(sp.InvalidArguments, match="chunksize=1"):
            async with pool.map("echo", [{"value": 1}, {"value": 2}], chunksize=2) as results:
                [r async for r in results]
        async with pool.map("echo", [{"value": 1}, {"value": 2}]) as results:
            assert [r async for r in results] == [1, 2]


async def test_an_item_of_a_chunk_fails_alone(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        items = [{"value": v} for v in (1, "raise", 3, "object", 5)] + [{"nope": 1}, {}]
        async with pool.map("mixed", items, chunksize=10, return_exceptions=True) as results:
            got = [r async for r in results]
        assert got[0] == 1 and got[2] == 3 and got[4] == 5 and got[6] is None
        assert isinstance(got[1], sp.RemoteError) and got[1].remote_type == "ValueError"
        assert isinstance(got[3], sp.SerializationError)
        assert isinstance(got[5], sp.InvalidArguments)  # refused before it was sent
        assert TRIES["mixed"] == 6 and pool.stats().requests == 1


async def test_without_return_exceptions_the_failing_item_ends_its_chunk(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        items = [{"value": v} for v in (1, 2, "raise", 4, 5)]
        with pytest.raises(sp.RemoteError, match="asked to raise"):
            async with pool.map("mixed", items, chunksize=5) as results:
                async for _ in results:
                    pass
        assert TRIES["mixed"] == 3  # the items after it never ran
        TRIES.clear()
        with pytest.raises(sp.InvalidArguments):  # refused before anything was sent
            async with pool.map("mixed", [{}, {"nope": 1}], chunksize=5) as results:
                async for _ in results:
                    pass
        assert TRIES == {}


async def test_a_chunk_stops_at_the_payload_limit(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1, max_payload_bytes=1000) as pool:
        items = [{"n": 300} for _ in range(5)]
        async with pool.map("text", items, chunksize=5, return_exceptions=True) as results:
            got = [r async for r in results]
        # As many as fit, the rest fail (with room for the error that says so).
        fit = got.index(next(g for g in got if not isinstance(g, str)))
        assert fit >= 1 and got[:fit] == ["x" * 300] * fit
        assert all(isinstance(g, sp.PayloadTooLarge) for g in got[fit:]), got[fit:]
        assert "max_payload_bytes" in str(got[fit])
        items = [{"value": "x" * 300} for _ in range(5)]
        with pytest.raises(sp.PayloadTooLarge, match="arguments of a batch of 5 calls"):
            async with pool.map("echo", items, chunksize=5) as results:
                async for _ in results:
                    pass


async def test_leaving_a_chunked_map_cancels_its_chunks(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=2) as pool:
        with trio.move_on_after(1.5):
            async with pool.map("gauge", gauged(list(range(8))), chunksize=4) as results:
                async for _ in results:
                    pytest.fail("a chunk's results come when it ends")
        # Each chunk was on its second item: it was cancelled; the rest never ran.
        assert sorted(v for kind, v in EVENTS if kind == "gauge cancelled") == [1, 5]
        await trio.testing.wait_all_tasks_blocked()
        assert pool.stats().in_flight == 0


async def test_retry_and_crashes_see_a_chunk_as_one_call(autojump_clock: Clock) -> None:
    policy = sp.RetryPolicy(attempts=2, initial=1, jitter="none")
    async with open_fake_pool(Tools, size=1, max_retries=0) as pool:

        async def crash_soon() -> None:
            await trio.sleep(0.5)
            faults(pool).crash()

        for idempotent in (True, False):
            await trio.sleep(1)  # the replacement of the last crash is up
            async with trio.open_nursery() as nursery:
                nursery.start_soon(crash_soon)
                items = gauged(list(range(3)))
                if idempotent:
                    got = []
                    async with pool.map(
                        "gauge", items, chunksize=3, retry=policy, idempotent=True
                    ) as results:
                        got = [r async for r in results]
                    assert got == [0, 1, 2]
                else:
                    with pytest.raises(sp.WorkerCrashed):
                        async with pool.map("gauge", items, chunksize=3, retry=policy) as rs:
                            async for _ in rs:
                                pass


async def test_a_session_map_in_chunks_keeps_to_its_worker(autojump_clock: Clock) -> None:
    async with (
        open_fake_pool(Tools, size=3) as pool,
        pool.session() as session,
        session.map("whoami", [None] * 20, chunksize=3) as results,
    ):
        assert len({r async for r in results}) == 1


async def test_a_bad_chunksize_is_named(autojump_clock: Clock) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        bad = ((0, ValueError), (2.5, TypeError), (None, TypeError), ("Auto", ValueError))
        for value, error in bad:
            allowed = "chunksize must be 'auto' or a whole number of items per call >= 1; got "
            with pytest.raises(error, match=allowed):
                async with pool.map("echo", [{}], chunksize=value):
                    pytest.fail("entered")
        with pytest.raises(ValueError, match=r"got 'Auto' \(did you mean 'auto'\?\)"):
            async with pool.map("echo", [{}], chunksize="Auto"):
                pytest.fail("entered")


async def test_a_queue_full_of_other_calls_refuses_the_map_as_itself(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Tools, size=1, max_queue=1) as pool:
        async with trio.open_nursery() as nursery:
            for _ in range(2):  # one runs, one fills the queue
                nursery.start_soon(functools.partial(pool.execute, "sleep", {"seconds": 5}))
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(sp.PoolSaturated):
                async with pool.map("echo", [{}] * 3) as results:
                    async for _ in results:
                        pass
        assert pool.stats().saturated == 1


# --- chunksize="auto" (the default): chunks sized by what the calls that ran cost --------------
QUICK = 2.0**-10  # seconds an item: about 1 ms of virtual time, 5 fit in a chunk's 5 ms


async def test_auto_grows_chunks_of_quick_items_and_keeps_slow_ones_alone(
    autojump_clock: Clock,
) -> None:
    """One lane, so the sizes are exact: 1, 2, 4, then the 5 items that fit in 5 ms; items
    that take 10 ms go one to a call, as with chunksize=1."""
    async with open_fake_pool(Tools, size=1) as pool:
        async with pool.map("gauge", gauged(list(range(100)), QUICK), max_concurrency=1) as rs:
            assert [r async for r in rs] == list(range(100))
        assert pool.stats().requests == 3 + 19  # 1 + 2 + 4 items, then 18 fives and a three
        before = pool.stats().requests
        async with pool.map("gauge", gauged(list(range(30)), 0.01), max_concurrency=1) as rs:
            assert [r async for r in rs] == list(range(30))
        assert pool.stats().requests - before == 30


async def test_auto_reads_ahead_at_most_twice_max_concurrency_chunks(
    autojump_clock: Clock,
) -> None:
    produced = consumed = worst = 0

    async def endless() -> AsyncIterator[dict[str, Any]]:
        nonlocal produced, worst
        while True:
            produced += 1
            worst = max(worst, produced - consumed)
            yield {"value": produced, "seconds": QUICK}

    async with open_fake_pool(Tools, size=2) as pool:
        async with (
            contextlib.aclosing(endless()) as source,
            pool.map("gauge", source, max_concurrency=2) as results,
        ):
            async for r in results:
                consumed += 1
                assert r == consumed
                if consumed == 300:
                    break
                await trio.sleep(0.01)  # a consumer slower than the calls: the lanes wait
        # Chunks of at most 5 (what fits in 5 ms): at most 2 * 2 * 5 items read ahead (and
        # as many, as the consumer is slow), not the 2 * 2 of one item per call.
        assert worst == 2 * 2 * 5
        assert pool.stats().requests < produced / 4


async def test_auto_items_fail_in_place_and_the_first_error_ends_its_chunk(
    autojump_clock: Clock,
) -> None:
    async with open_fake_pool(Tools, size=1) as pool:
        items = [{"value": "fail" if i in (40, 77) else i, "seconds": QUICK} for i in range(100)]
        async with pool.map("gauge", items, max_concurrency=1, return_exceptions=True) as rs:
            got = [r async for r in rs]
        assert [g for i, g in enumerate(got) if i not in (40, 77)] == [
            i for i in range(100) if i not in (40, 77)
        ]
        assert isinstance(got[40], sp.RemoteError) and isinstance(got[77], sp.RemoteError)
        assert pool.stats().requests < 30  # in chunks
        RUNNING.update(now=0, peak=0)
        start = trio.current_time()
        with pytest.raises(sp.RemoteError, match="gauge asked to fail"):
            async with pool.map("gauge", items, max_concurrency=1) as rs:
                async for _ in rs:
                    pass
        # Items 0-40 ran (40 failed): 40 is the fourth of the chunk 37-41, and 41 never ran.
        assert trio.current_time() - start == pytest.approx(41 * QUICK)


async def test_auto_splits_a_chunk_too_large_to_send(autojump_clock: Clock) -> None:
    """Small items make the chunks grow; larger ones then come: a chunk of them that would
    be over max_payload_bytes is sent in halves, and no item fails."""
    async with open_fake_pool(Tools, size=1, max_payload_bytes=2000) as pool:
        items = [{"value": i} for i in range(40)] + [{"value": "x" * 300}] * 20
        async with pool.map("echo", items, max_concurrency=1) as results:
            got = [r async for r in results]
        assert got == list(range(40)) + ["x" * 300] * 20
        with pytest.raises(sp.PayloadTooLarge):  # as a chunk of its own size, it fails
            async with pool.map("echo", items, chunksize=20) as results:
                async for _ in results:
                    pass


def _handler(pool: sp.Pool) -> None:
    pool.telemetry.attach("watching", "*", lambda event: None)


def _no_batches(pool: sp.Pool) -> None:
    """Its workers name no capability, as workers of another runtime may (the engine keeps
    counts of what its workers lack: they are taken off and put back)."""
    engine = pool._engine
    for worker in engine.workers.values():
        engine._count(worker, -1)
        worker.capabilities = frozenset()
        engine._count(worker, 1)


ONE_PER_CALL: list[tuple[str, dict[str, Any], dict[str, Any], Any]] = [
    ("timeout", {}, {"timeout": 5}, None),
    ("pool timeout", {"timeout": 60}, {}, None),
    ("retry", {}, {"retry": sp.RetryPolicy(attempts=2)}, None),
    ("breaker", {}, {"breaker": sp.CircuitBreaker(failure_threshold=5)}, None),
    ("max_requests", {"max_requests": 10_000}, {}, None),
    ("telemetry", {}, {}, _handler),
    ("no batch capability", {}, {}, _no_batches),
]


@pytest.mark.parametrize(
    ("pool_options", "map_options", "setup"),
    [case[1:] for case in ONE_PER_CALL],
    ids=[case[0] for case in ONE_PER_CALL],
)
async def test_auto_sends_one_item_per_call_where_a_chunk_would_break_a_promise(
    autojump_clock: Clock, pool_options: dict[str, Any], map_options: dict[str, Any], setup: Any
) -> None:
    """A timeout, retry or breaker is about each item's call, max_requests counts calls,
    telemetry reports each call, and workers without the "batch" capability run no chunks."""
    async with open_fake_pool(Tools, size=2, **pool_options) as pool:
        if not pool_options:
            async with pool.map("echo", [{"value": i} for i in range(50)]) as results:
                assert [r async for r in results] == list(range(50))
            assert pool.stats().requests < 25  # the same items otherwise go in chunks
        if setup is not None:
            setup(pool)
        before = pool.stats().requests
        async with pool.map("echo", [{"value": i} for i in range(50)], **map_options) as rs:
            assert [r async for r in rs] == list(range(50))
        assert pool.stats().requests - before == 50


async def test_what_the_workers_lack_is_counted_as_they_come_and_go(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Asked on every call, so counted as workers come and go rather than looked up in each.
    async with open_fake_pool(Tools, size=2) as pool:
        engine = pool._engine
        assert engine.runs_batches and engine.arrow
        lacking = next(iter(engine.workers.values()))
        engine._count(lacking, -1)
        lacking.capabilities = frozenset()  # as a worker of another runtime may
        engine._count(lacking, 1)
        assert not engine.runs_batches and not engine.arrow
        faults(pool).crash(lacking.id)
        await trio.testing.wait_all_tasks_blocked()
        assert lacking.id not in engine.workers
        assert engine.runs_batches and engine.arrow  # the worker that lacked them is gone
        await wait_for(lambda: len(engine.workers) == 2, 60)  # its replacement, backed off
        assert engine.runs_batches and engine.arrow
        assert (engine._without_arrow, engine._without_batch) == (0, 0)
