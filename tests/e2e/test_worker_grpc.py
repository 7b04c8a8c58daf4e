"""End-to-end: a real worker process spoken to directly over gRPC, as a simple client would.

These tests are synchronous and drive grpclib with asyncio.run (never inside Trio).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
from grpclib.client import Channel
from grpclib.const import Cardinality

from snakepit_trio._proto.snakepit import v1 as pb

TRANSPORT_AGNOSTIC = True  # see conftest.py


@contextmanager
def start_worker(
    adapter: str = "tests.adapters.basic:Echo", *extra: str, stdin: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A worker started the way the pool starts one; yields its socket path and process."""
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "w.sock")
        ready_r, ready_w = os.pipe()
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakepit_trio.worker", "--adapter", adapter,
             "--socket", sock, "--ready-fd", str(ready_w), *extra],
            pass_fds=(ready_w,),
            start_new_session=True,
            stdin=stdin,
        )  # fmt: skip
        os.close(ready_w)
        try:
            with os.fdopen(ready_r, "rb") as ready:
                assert ready.readline().startswith(b"READY")
            yield sock, proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@contextmanager
def worker_socket() -> Iterator[str]:
    with start_worker() as (sock, proc):
        yield sock
        assert proc.poll() is None, "the worker must still be alive"
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM: drain, cleanup, exit 0


def run(sock: str, fn: Callable[[Channel], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        channel = Channel(path=sock)
        try:
            return await asyncio.wait_for(fn(channel), timeout=20)
        finally:
            channel.close()

    return asyncio.run(main())


def exchange(
    messages: list[bytes], done: Callable[[list[Any]], bool]
) -> Callable[[Channel], Awaitable[list[Any]]]:
    """For ``run``: send each of ``messages`` (a Batch's raw ``frames`` bytes) on one Connect
    stream, then collect the frames the worker sends back until ``done(frames)``."""

    async def talk(channel: Channel) -> list[Any]:
        async with channel.request(
            "/snakepit.v1.Worker/Connect", Cardinality.STREAM_STREAM, pb.Batch, pb.Batch
        ) as stream:
            await stream.send_request()
            for message in messages:
                await stream.send_message(pb.Batch(frames=message))
            frames: list[Any] = []
            while not done(frames):
                reply = await stream.recv_message()
                assert reply is not None, "the worker closed the stream"
                frames += msgpack.unpackb(reply.frames)
            await stream.end()
            return frames

    return talk


def test_describe_health_execute_and_execute_stream() -> None:
    async def calls(channel: Channel) -> Any:
        stub = pb.WorkerStub(channel)
        desc = await stub.describe()
        health = await stub.health()
        ok = await stub.execute(pb.ExecuteRequest(tool="add", args=msgpack.packb({"a": 2})))
        err = await stub.execute(pb.ExecuteRequest(tool="fail"))
        chunks = [
            msgpack.unpackb(r.result)
            async for r in stub.execute_stream(
                pb.ExecuteRequest(tool="count", args=msgpack.packb({"n": 40}))
            )
        ]
        return desc, health, ok, err, chunks

    with worker_socket() as sock:
        desc, health, ok, err, chunks = run(sock, calls)
    assert desc.protocol == "snakepit.v1" and "add" in {t.name for t in desc.tools}
    assert health.status == "serving" and health.pid == desc.pid
    assert msgpack.unpackb(ok.result) == 3
    assert err.error.kind == "remote" and err.error.type == "ValueError"
    assert chunks == list(range(40))  # more chunks than the credit window, in order


def test_malformed_frames_leave_the_worker_answering() -> None:
    good = [[0, 7, "add", msgpack.packb({"a": 1}), None, None, 0]]
    dup = [[0, 8, "asleep", msgpack.packb({"seconds": 0.2}), None, None, 0]] * 2
    junk = [b"\xc1", msgpack.packb("nope"), msgpack.packb([[99, 1], ["x"], []])]
    abuse = exchange([*junk, msgpack.packb(good + dup)], lambda frames: len(frames) >= 3)

    with worker_socket() as sock:
        frames = run(sock, abuse)
        by_kind = sorted((f[0], f[1]) for f in frames)
        assert by_kind == [(10, 7), (10, 8), (13, 8)]  # duplicate id refused, both others ran
        assert run(sock, lambda ch: pb.WorkerStub(ch).health()).status == "serving"


def test_a_call_cancelled_in_the_same_batch_still_gets_its_final_frame() -> None:
    # CALL and CANCEL read together: the call's task is cancelled before its first step.
    frames = []
    for call_id, tool in ((1, "asleep"), (2, "sleep")):
        call = [0, call_id, tool, msgpack.packb({"seconds": 5}), None, None, 0]
        frames += [call, [1, call_id]]

    def finals_of(received: list[Any]) -> list[Any]:
        return [f for f in received if f[0] in (10, 13)]

    call_then_cancel = exchange([msgpack.packb(frames)], lambda got: len(finals_of(got)) >= 2)

    with worker_socket() as sock:
        finals = finals_of(run(sock, call_then_cancel))
        # Both end with a "cancelled" ERROR frame: async (task never stepped) and sync.
        assert sorted((f[0], f[1], f[5]) for f in finals) == [
            (13, 1, "cancelled"),
            (13, 2, "cancelled"),
        ]
