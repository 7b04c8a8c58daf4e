"""End-to-end, at the wire: host tools as a worker speaks them, to hosts with and without them.

A real worker driven over its local lane (no pool): what it sends for a host call, that it
sends none to a host that did not name "host_tools" in its HELLO (an older host, or a simple
client), and how a cancelled call gives up its open host call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest

from snakepit_trio._shared import _frames as w
from tests.e2e.wire_helpers import Lane, start_worker

TRANSPORT_AGNOSTIC = True  # see conftest.py: the lane is driven directly

BRIDGE = "tests.adapters.bridge:Bridge"


@contextmanager
def lane_to(tmp: Path, hello: list[Any]) -> Iterator[Lane]:
    path = str(tmp / "w.lane")
    with start_worker(BRIDGE, "--lane", path) as (_, proc):
        lane = Lane(path, hello)
        try:
            yield lane
        finally:
            lane.close()
        assert proc.poll() is None, "the worker must still be alive"


def call(call_id: int, tool: str, args: dict[str, Any]) -> list[Any]:
    return w.call(call_id, tool, msgpack.packb(args), None, None, 0)


def final(call_id: int) -> Any:
    return lambda frame: frame[0] in (w.RESULT, w.ERROR) and frame[1] == call_id


@pytest.mark.parametrize(
    "hello", [w.hello(capabilities=()), [w.HELLO, w.PROTOCOL]], ids=["none named", "old HELLO"]
)
@pytest.mark.parametrize("tool", ["call", "acall"])
def test_a_host_without_host_tools_gets_no_host_call(
    tmp_path: Path, hello: list[Any], tool: str
) -> None:
    with lane_to(tmp_path, hello) as lane:
        lane.send([call(1, tool, {"name": "lookup", "args": None})])
        frames = lane.until(final(1))
        assert not [f for f in frames if f[0] in (w.HOST_CALL, w.HOST_TOOLS)]
        assert frames[-1][0] == w.RESULT
        outcome = msgpack.unpackb(frames[-1][2])
        assert outcome["error"] == "HostToolsUnavailable" and outcome["kind"] == "unavailable"


@pytest.mark.parametrize("tool", ["call", "acall"])
def test_a_host_call_names_its_call_and_its_answer_is_the_tools_value(
    tmp_path: Path, tool: str
) -> None:
    with lane_to(tmp_path, w.hello()) as lane:
        lane.send([call(5, tool, {"name": "lookup", "args": {"key": "k"}})])
        [*_, host_call] = lane.until(lambda frame: frame[0] == w.HOST_CALL)
        _, hcid, call_id, name, args = host_call
        assert (call_id, name, msgpack.unpackb(args)) == (5, "lookup", {"key": "k"})
        lane.send([w.host_result(hcid, msgpack.packb({"found": True}))])
        frames = lane.until(final(5))
        assert msgpack.unpackb(frames[-1][2]) == {"value": {"found": True}}
        # An answer for a host call nobody waits for is ignored.
        lane.send([w.host_result(hcid, msgpack.packb(1)), w.host_error(77, "T", "m", "remote")])
        lane.send([call(6, tool, {"name": "lookup", "args": None})])
        [*_, again] = lane.until(lambda frame: frame[0] == w.HOST_CALL)
        lane.send([w.host_error(again[1], "KeyError", "'k'", w.KIND_REMOTE)])
        frames = lane.until(final(6))
        assert msgpack.unpackb(frames[-1][2])["remote_type"] == "KeyError"


@pytest.mark.parametrize("tool", ["call", "acall"])
def test_cancelling_a_call_gives_up_its_open_host_call(tmp_path: Path, tool: str) -> None:
    with lane_to(tmp_path, w.hello()) as lane:
        lane.send([call(3, tool, {"name": "lookup", "args": None})])
        [*_, host_call] = lane.until(lambda frame: frame[0] == w.HOST_CALL)
        lane.send([w.cancel(3)])
        frames = lane.until(final(3))
        assert [w.HOST_CANCEL, host_call[1]] in frames
        assert frames.index([w.HOST_CANCEL, host_call[1]]) < len(frames) - 1
        assert frames[-1][0] == w.ERROR and frames[-1][5] == w.KIND_CANCELLED


@pytest.mark.parametrize("tool", ["call", "acall"])
def test_an_answer_the_worker_cannot_read_fails_that_host_call(tmp_path: Path, tool: str) -> None:
    """A HOST_ERROR of a kind this worker does not know (a newer host), or a HOST_RESULT
    without its value: the tool that waits for it gets an error, not a wait forever."""
    with lane_to(tmp_path, w.hello()) as lane:
        for n, bad in enumerate(
            [
                lambda hcid: [w.HOST_ERROR, hcid, "T", "m", "rate_limited"],
                lambda hcid: [w.HOST_RESULT, hcid],
            ]
        ):
            lane.send([call(n, tool, {"name": "lookup", "args": None})])
            [*_, host_call] = lane.until(lambda frame: frame[0] == w.HOST_CALL)
            lane.send([bad(host_call[1])])
            frames = lane.until(final(n))
            outcome = msgpack.unpackb(frames[-1][2])
            assert outcome["error"] == "HostToolError" and outcome["kind"] == "protocol"
