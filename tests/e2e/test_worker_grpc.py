"""End-to-end: a real worker process spoken to directly over gRPC, as a simple client would.

These tests are synchronous and drive grpclib with asyncio.run (never inside Trio).
"""

from __future__ import annotations

from typing import Any

import msgpack
from grpclib.client import Channel

from snakepit_trio._proto.snakepit import v1 as pb
from tests.e2e.wire_helpers import exchange, run, worker_socket

TRANSPORT_AGNOSTIC = True  # see conftest.py


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
