"""End-to-end (real workers): whatever a tool raises fails its call only (README rule).

A seeded barrage, all at once on workers running two calls each: every kind of tool (sync,
async, both kinds of generator, a generator closed early, a sync tool when it sees its
cancel) raising SystemExit, KeyboardInterrupt, an exception whose ``str()`` raises, one
whose traceback cannot be formatted, one whose type cannot be named, one whose message no
UTF-8 holds, among ordinary calls. Then the ways a tool's failure can grow too large to
send: a message of megabytes, many long failures at once, progress reports of the wrong
types or of any length. And ``on_session_end`` raising SystemExit or KeyboardInterrupt.
Each time: the caller gets RemoteError (or its own cancellation), the worker serves on,
nothing is counted as a crash.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio

import snakepit_trio as sp
from snakepit_trio.worker._outcomes import MAX_MESSAGE, MAX_TRACEBACK
from tests.adversarial.conftest import Seed, scaled

RAISER = "tests.adapters.adversarial:Raiser"
STORM = "tests.adapters.adversarial:Storm"
SESSION_END = "tests.adapters.adversarial:SessionEndRaises"

REMOTE_TYPES = {
    "SystemExit": "SystemExit",
    "KeyboardInterrupt": "KeyboardInterrupt",
    "Unprintable": "tests.adapters.faults.Unprintable",
    "Unformattable": "tests.adapters.faults.Unformattable",
    "Unnameable": "WorkerError",
    "surrogate": "ValueError",
}
UNARY = ["raises", "araises"]
STREAMS = ["gen_raises", "agen_raises"]
CLOSED_EARLY = ["gen_raises_on_close", "agen_raises_on_close"]
ON_CANCEL = ["raises_when_cancelled"]


async def _one(pool: sp.Pool, rng: random.Random, problems: list[str]) -> None:
    tool = rng.choice([*UNARY, *STREAMS, *CLOSED_EARLY, *ON_CANCEL, "echo", "aecho"])
    what = rng.choice(sorted(REMOTE_TYPES))
    label = f"{tool}({what})"
    chunks: list[Any] = []
    try:
        if tool in ("echo", "aecho"):
            if await pool.execute(tool, {"value": label}) != label:
                problems.append(f"{label}: wrong result")
            return
        if tool in ON_CANCEL:
            with pytest.raises(sp.RequestTimeout):
                await pool.execute(tool, {"what": what}, timeout=rng.uniform(0.001, 0.05))
            return
        if tool in UNARY:
            await pool.execute(tool, {"what": what})
        else:
            async with pool.stream(tool, {"what": what}) as stream:
                async for chunk in stream:
                    chunks.append(chunk)
                    if tool in CLOSED_EARLY:
                        break  # it raises as it is closed, after we left
            if tool in CLOSED_EARLY and chunks == [1]:
                return
        problems.append(f"{label}: no error, chunks {chunks}")
    except sp.RemoteError as exc:
        if exc.remote_type != REMOTE_TYPES[what] or chunks != ([1] if tool in STREAMS else []):
            problems.append(f"{label}: {exc.remote_type}, chunks {chunks}")
    except Exception as exc:
        problems.append(f"{label}: {exc!r}")


async def test_a_barrage_of_raising_tools_fails_only_their_calls(seed: Seed) -> None:
    problems: list[str] = []
    with trio.fail_after(120):
        async with sp.open_pool(RAISER, size=2, worker_capacity=2) as pool:
            pids = sorted(w.pid for w in pool.workers())
            async with trio.open_nursery() as nursery:
                for _ in range(scaled(300)):
                    nursery.start_soon(_one, pool, random.Random(seed.rng.random()), problems)
            assert await pool.execute("echo", {"value": "after"}) == "after"
            assert sorted(w.pid for w in pool.workers()) == pids, seed.replay
            assert pool.stats().crashes == 0, seed.replay
    assert not problems, f"{seed.replay}: {problems[:10]}"


async def test_a_failure_too_large_to_send_is_cut_not_fatal() -> None:
    with trio.fail_after(120):
        async with sp.open_pool(STORM, size=1, worker_capacity=4, max_payload_bytes=10**6) as pool:
            [worker] = pool.workers()
            # Its message and traceback were 3 MB each: over what one lane message holds.
            with pytest.raises(sp.RemoteError) as failed:
                await pool.execute("fail_sized", {"size": 3 * 10**6})
            message = failed.value.remote_message
            assert message.startswith("x" * 1000) and "characters cut" in message
            assert len(message) < MAX_MESSAGE + 100
            traceback = failed.value.remote_traceback
            assert traceback.startswith("Traceback") and "characters cut" in traceback
            assert traceback.rstrip().endswith("x" * 1000)  # the exception's line, cut
            assert len(traceback) < MAX_TRACEBACK + 100

            async def long_failure() -> None:
                with pytest.raises(sp.RemoteError):
                    await pool.execute("fail_sized", {"size": 200_000})

            async with trio.open_nursery() as nursery:  # a batch of long failures
                for _ in range(40):
                    nursery.start_soon(long_failure)
            assert [w.pid for w in pool.workers()] == [worker.pid]
            assert pool.stats().crashes == 0


@pytest.mark.parametrize(
    ("what", "outcome"),
    [
        ("text done", "TypeError"),
        ("object message", "reported"),
        ("nan", "reported"),
        ("huge int", "reported"),
        ("huge message", "reported"),
    ],
)
async def test_progress_reports_of_any_value_never_cost_the_worker(what: str, outcome: str) -> None:
    reports: list[sp.Progress] = []
    with trio.fail_after(60):
        async with sp.open_pool(STORM, size=1, max_payload_bytes=10**6) as pool:
            [worker] = pool.workers()
            try:
                if what == "huge message":
                    got = await pool.execute(
                        "progress_sized", {"size": 5 * 10**6}, on_progress=reports.append
                    )
                else:
                    got = await pool.execute(
                        "progress_odd", {"what": what}, on_progress=reports.append
                    )
            except sp.RemoteError as exc:
                got = exc.remote_type
            assert got == outcome
            assert await pool.execute("pid") == worker.pid
            assert pool.stats().crashes == 0
    if outcome == "reported":
        [report] = reports
        assert len(report.message or "") <= 4096 + 100


@pytest.mark.parametrize("what", ["SystemExit", "KeyboardInterrupt", "ValueError"])
async def test_on_session_end_that_raises_leaves_the_worker_serving(what: str) -> None:
    with trio.fail_after(60):
        async with sp.open_pool(SESSION_END, size=1) as pool:
            [worker] = pool.workers()
            async with pool.session(f"other-{what}") as other:  # lives on the same worker
                for n in range(1, 4):
                    async with pool.session(f"s{n}-{what}") as session:
                        await session.execute("pid")
                    # The count lives in the worker: no event to wait on, so ask again.
                    while await pool.execute("ends_seen") < n:  # noqa: ASYNC110
                        await trio.sleep(0.01)
                assert await other.execute("pid") == worker.pid
            assert pool.stats().crashes == 0
