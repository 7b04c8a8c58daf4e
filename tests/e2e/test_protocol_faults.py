"""End-to-end: a worker that breaks the frame protocol is replaced, and no caller is left.

Each case sends one bad batch from a real worker, over both transports. The host must apply
nothing of that batch, kill the worker, and end every call that was on it with
WorkerCrashed(cause="protocol") within 1 s; then the pool serves on with a new worker.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
import trio

import snakepit_trio as sp
from tests.helpers import wait_for

ROGUE = "tests.adapters.rogue:Rogue"
RESULT, CHUNK, ERROR, WELCOME, EVENT, CHUNKS = 10, 11, 13, 16, 20, 23

CASES: dict[str, tuple[list[Any], bool]] = {
    "a frame that is not an array": (["junk"], False),
    "a RESULT without its fields": ([[RESULT]], False),
    "an unknown kind": ([[99, 1]], False),
    "a host-to-worker kind": ([[0, 1, "ok", b"", None, None, 0]], False),
    "an ERROR with a wrong field type": ([[ERROR, 1, "T", 5, "", "remote"]], False),
    "a RESULT for a call it never got": ([[RESULT, 10**9, b"\xc0", None]], False),
    "a WELCOME after the handshake": ([[WELCOME, {}]], False),
    "a CHUNK for a unary call": ([], True),
    "an EVENT whose measurement is not a number": ([[EVENT, None, "x", {"v": "s"}, {}, 0]], False),
    "an EVENT whose name is not dotted words": ([[EVENT, None, "a b", {}, {}, 0.0]], False),
}


async def held_then_rogue(
    pool: sp.Pool, frames: Any, own: bool = False
) -> dict[str, BaseException | Any]:
    """A call held on the worker, then the rogue batch; how each call ended.

    The promise tested: every caller on the worker ends within 1 s of the bad batch.
    """
    outcomes: dict[str, BaseException | Any] = {}
    ended = {"held": trio.Event(), "rogue": trio.Event()}

    async def call(name: str, tool: str, args: dict[str, Any]) -> None:
        try:
            outcomes[name] = await pool.execute(tool, args)
        except sp.SnakepitError as exc:
            outcomes[name] = exc
        ended[name].set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, "held", "hold", {})
        await wait_for(lambda: pool.stats().in_flight == 1)
        if callable(frames):  # frames that name the held call
            [held_id] = await pool.execute("held_ids")
            frames = frames(held_id)
        nursery.start_soon(call, "rogue", "send", {"frames": frames, "own": own})
        with trio.fail_after(1):
            for event in ended.values():
                await event.wait()
    return outcomes


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_bad_batch_replaces_the_worker_and_ends_its_calls(case: str) -> None:
    frames, own = CASES[case]
    async with sp.open_pool(ROGUE, size=1, worker_capacity=4, registry=False) as pool:
        [before] = pool.workers()
        outcomes = await held_then_rogue(pool, frames, own)
        for name in ("held", "rogue"):
            error = outcomes[name]
            assert isinstance(error, sp.WorkerCrashed), (name, error)
            assert error.cause == "protocol"
            assert "broke the frame protocol" in str(error)
        with trio.fail_after(10):
            assert await pool.execute("ok") == "ok"  # a new worker serves
        assert [w.id for w in pool.workers()] != [before.id]
        assert pool.stats().crashes == 1


async def test_a_chunks_frame_for_a_unary_call_replaces_the_worker() -> None:
    async with sp.open_pool(ROGUE, size=1, worker_capacity=4, registry=False) as pool:
        outcomes = await held_then_rogue(pool, lambda held: [[CHUNKS, held, [b"\xc0"]]])
        assert isinstance(outcomes["held"], sp.WorkerCrashed), outcomes["held"]
        assert outcomes["held"].cause == "protocol"
        assert "CHUNKS for unary call" in str(outcomes["held"])


@pytest.mark.parametrize(
    ("chunks", "reason"),
    [(3, "CHUNKS of 3 chunks beyond the credit"), (0, "CHUNKS with no chunk")],
    ids=["beyond the credit", "empty"],
)
async def test_a_chunks_frame_that_does_not_fit_the_stream_replaces_the_worker(
    chunks: int, reason: str
) -> None:
    async with sp.open_pool(ROGUE, size=1, registry=False) as pool:
        [before] = pool.workers()
        with trio.fail_after(10), pytest.raises(sp.WorkerCrashed) as info:
            async with pool.stream("flood", {"chunks": chunks}, window=2) as stream:
                async for _ in stream:
                    pass
        assert info.value.cause == "protocol" and reason in str(info.value)
        with trio.fail_after(10):
            assert await pool.execute("ok") == "ok"  # a new worker serves
        assert [w.id for w in pool.workers()] != [before.id]


async def test_a_chunks_frame_within_the_credit_is_read_whole() -> None:
    async with sp.open_pool(ROGUE, size=1, registry=False) as pool:
        got = []
        with trio.fail_after(10):
            async with pool.stream("flood", {"chunks": 2}, window=2) as stream:
                async for value in stream:
                    got.append(value)
                    if len(got) == 2:
                        break
        assert got == [None, None]
        assert pool.stats().crashes == 0


async def test_no_batch_is_half_applied() -> None:
    # A valid RESULT for a running call, then junk, in one batch: the call must not get that
    # result; it ends with the worker, like every other call there.
    async with sp.open_pool(ROGUE, size=1, worker_capacity=4, registry=False) as pool:
        outcomes = await held_then_rogue(
            pool, lambda held: [[RESULT, held, b"\xa5early", None], [RESULT]]
        )
        assert isinstance(outcomes["held"], sp.WorkerCrashed), outcomes["held"]
        assert outcomes["held"].cause == "protocol"


BATCH_ANSWERS: dict[str, Any] = {
    "not an array": 5,
    "more entries than items": [[0, 1], [0, 2], [0, 3]],
    "an entry neither value nor error": [[2, 1]],
    "an error entry without its fields": [[0, 1], [1, "T"]],
    "an error entry of an unknown kind": [[1, "T", "m", "", "oops"]],
    "fewer entries, the last no error": [[0, 1]],
}


@pytest.mark.parametrize("case", sorted(BATCH_ANSWERS))
async def test_a_bad_answer_to_a_batch_replaces_the_worker(case: str) -> None:
    answer = msgpack.packb(BATCH_ANSWERS[case], use_bin_type=True)
    async with sp.open_pool(ROGUE, size=1, worker_capacity=2, registry=False) as pool:
        with trio.fail_after(10), pytest.raises(sp.WorkerCrashed) as info:
            async with pool.map("answer", [{"result": answer}] * 2, chunksize=2) as results:
                async for _ in results:
                    pass
        assert info.value.cause == "protocol" and "batch call" in str(info.value)
        with trio.fail_after(10):
            assert await pool.execute("ok") == "ok"  # a new worker serves
