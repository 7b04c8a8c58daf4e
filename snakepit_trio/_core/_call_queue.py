"""A queue of waiting calls, served in submission order; any call may leave it cheaply.

How this works: a heap of the calls themselves, ordered by ``seq``, the call's submission
order (one per call, never shared; a call compares by it), so the heap's top is the oldest
call, and a call put back (it never ran where it was sent) takes its old place. A call
knows the queue it waits in (``waiting_in``, set only here): a call that leaves from the
middle (its caller gave up) is only marked so, and its heap entry is dropped when it reaches
the top, or all such entries at once when they outnumber the live ones. So submitting,
serving and abandoning a call cost O(log n) however many wait: a deque's ``remove`` cost
O(n) each, and a storm of timeouts over 20,000 waiting calls held the host for seconds.

A call that left and came back while its old entry is still in the heap has two entries:
the first to reach the top serves it, which marks it gone, so the other is dropped later.
No tuple per entry and no dict of members: at 100,000 waiting calls they were 100 of the
about 1,000 bytes a waiting call cost the pool.

Pure, like the rest of ``_core``: no I/O, no clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any


class CallQueue:
    """Waiting calls, oldest first: anything with a ``seq`` no other call has, that compares
    by it (``<``), and a ``waiting_in`` attribute (None at first) that only queues set."""

    __slots__ = ("_count", "_heap")

    def __init__(self) -> None:
        self._heap: list[Any] = []  # the calls, and the entries of calls that left
        self._count = 0  # the calls that wait here

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __contains__(self, call: object) -> bool:
        return getattr(call, "waiting_in", None) is self

    def __iter__(self) -> Iterator[Any]:
        """The waiting calls, oldest first."""
        live = {call for call in self._heap if call.waiting_in is self}  # once each
        return iter(sorted(live, key=_seq))

    def append(self, call: Any) -> None:
        """Add ``call`` at its place in submission order (the end, unless put back)."""
        if call.waiting_in is not self:
            call.waiting_in = self
            self._count += 1
        heapq.heappush(self._heap, call)

    def first(self) -> Any:
        """The oldest waiting call (the queue is not empty)."""
        self._prune()
        return self._heap[0]

    def popleft(self) -> Any:
        """Take the oldest waiting call.

        Raises:
            IndexError: nothing waits.
        """
        self._prune()
        call = heapq.heappop(self._heap)
        call.waiting_in = None
        self._count -= 1
        return call

    def remove(self, call: Any) -> None:
        """Take ``call`` out, wherever it waits.

        Raises:
            ValueError: it does not wait here.
        """
        if call not in self:
            raise ValueError(f"call {getattr(call, 'id', call)!r} is not in the queue")
        call.waiting_in = None
        self._count -= 1
        if len(self._heap) > 2 * self._count + 64:
            live = {c for c in self._heap if c.waiting_in is self}  # once each
            self._heap = list(live)
            heapq.heapify(self._heap)

    def _prune(self) -> None:
        """Drop the top entries of calls that have left."""
        heap = self._heap
        while heap and heap[0].waiting_in is not self:
            heapq.heappop(heap)


def _seq(call: Any) -> int:
    seq: int = call.seq
    return seq
