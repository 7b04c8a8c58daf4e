"""End-to-end, at the wire: a CANCEL for a call still waiting for a slot is answered at once.

A real worker of capacity 1, driven over its local lane as a host would (no pool). A first
call holds the only slot until the test releases it (it connects to the test's socket, which
also tells the test it runs); a second call waits behind it and is cancelled. The second's
ERROR(cancelled, {"started": False}) must arrive while the first still runs, the first's
RESULT when it is released, and the second tool must never run.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest

from snakepit_trio._shared import _frames as w
from tests.e2e.wire_helpers import WAIT, Lane, start_worker

TRANSPORT_AGNOSTIC = True  # see conftest.py: the lane is driven directly

FAULTS = "tests.adapters.faults:Faults"


def final_of(call_id: int) -> Callable[[list[Any]], bool]:
    return lambda frame: frame[0] in (w.RESULT, w.END, w.ERROR) and frame[1] == call_id


def call(call_id: int, tool: str, args: dict[str, Any], window: int = 0) -> list[Any]:
    return w.call(call_id, tool, msgpack.packb(args), None, None, window)


@contextmanager
def lane_worker(tmp: Path) -> Iterator[Lane]:
    """A worker of capacity 1 and a lane to it; on exit it must still be alive."""
    path = str(tmp / "w.lane")
    with start_worker(FAULTS, "--lane", path, "--capacity", "1") as (_, proc):
        lane = Lane(path)
        try:
            yield lane
        finally:
            lane.close()
        assert proc.poll() is None, "the worker must still be alive"


@contextmanager
def release_socket(tmp: Path) -> Iterator[tuple[str, socket.socket]]:
    """Where a held call connects; it runs until the test sends it a byte."""
    path = str(tmp / "release.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.settimeout(WAIT)
    listener.bind(path)
    listener.listen()
    try:
        yield path, listener
    finally:
        listener.close()


# The holding tool takes the slot the second call then waits for: sync unary calls wait for
# the tool threads, async calls and streams for the runtime's slots.
CASES = {
    "sync": ("hold", "mark", 0),
    "async": ("ahold", "amark", 0),
    "sync generator": ("ahold", "gen_mark", 4),
    "async generator": ("ahold", "agen_mark", 4),
}


@pytest.mark.parametrize("batch", ["with its CALL", "after its CALL was read"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_call_cancelled_while_it_waits_is_answered_at_once_and_never_runs(
    tmp_path: Path, case: str, batch: str
) -> None:
    holder, tool, window = CASES[case]
    marker, after = tmp_path / "marker", tmp_path / "after"
    with release_socket(tmp_path) as (path, listener), lane_worker(tmp_path) as lane:
        lane.send([call(1, holder, {"path": path})])
        held, _ = listener.accept()  # call 1 runs, and holds the only slot
        with held:
            second = call(2, tool, {"path": str(marker)}, window)
            if batch == "with its CALL":
                lane.send([second, w.cancel(2)])
            else:
                lane.send([second, w.ping(7)])  # read in a loop pass of its own
                lane.until(lambda frame: frame[0] == w.PONG)
                lane.send([w.cancel(2)])
            frames = lane.until(final_of(2))
            # Answered while call 1 still runs (it cannot end before the test releases it).
            assert frames[-1] == [
                w.ERROR, 2, "CancelledError", "call cancelled before it started", "",
                w.KIND_CANCELLED, {"started": False},
            ]  # fmt: skip
            assert not any(final_of(1)(frame) for frame in frames)
            held.sendall(b"x")
            first = lane.until(final_of(1))[-1]
        assert first[:2] == [w.RESULT, 1] and msgpack.unpackb(first[2]) == "released"
        # Had call 2 stayed in the queue, it would run before this one.
        lane.send([call(3, tool, {"path": str(after)}, window)])
        assert lane.until(final_of(3))[-1][:2] == [w.END if window else w.RESULT, 3]
        assert after.exists()
        assert not marker.exists(), "the withdrawn call ran"


@pytest.mark.parametrize("holder", ["hold", "ahold"])
def test_a_cancelled_call_that_had_started_answers_without_the_detail(
    tmp_path: Path, holder: str
) -> None:
    with release_socket(tmp_path) as (path, listener), lane_worker(tmp_path) as lane:
        lane.send([call(1, holder, {"path": path})])
        held, _ = listener.accept()
        with held:
            lane.send([w.cancel(1), w.ping(1)])
            if holder == "hold":  # sync code cannot be interrupted: it ends when released
                lane.until(lambda frame: frame[0] == w.PONG)  # the CANCEL was read
                held.sendall(b"x")
            final = lane.until(final_of(1))[-1]
        # No detail: the tool may have run (here it did: it connected).
        assert final == [w.ERROR, 1, "CancelledError", "call cancelled", "", w.KIND_CANCELLED]
