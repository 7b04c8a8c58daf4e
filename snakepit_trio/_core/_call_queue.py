"""A queue of waiting calls, served in submission order; any call may leave it cheaply.

How this works: a heap of ``(seq, entry number, call)``; ``seq`` is the call's submission
order, so the heap's top is the oldest call, and a call put back (it never ran where it
was sent) takes its old place. A call that leaves from the middle (its caller gave up) is
only forgotten in ``_members``; its heap entry is dropped when it reaches the top, or all
such entries at once when they outnumber the live ones. So submitting, serving and
abandoning a call cost O(log n) however many wait: a deque's ``remove`` cost O(n) each,
and a storm of timeouts over 20,000 waiting calls held the host for seconds.

Pure, like the rest of ``_core``: no I/O, no clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Any


class CallQueue:
    """Waiting calls (anything with ``id`` and ``seq``), oldest first."""

    __slots__ = ("_entries", "_heap", "_members")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Any]] = []
        # call id -> its live heap entry (the same tuple: one object per waiting call)
        self._members: dict[int, tuple[int, int, Any]] = {}
        self._entries = itertools.count()

    def __len__(self) -> int:
        return len(self._members)

    def __bool__(self) -> bool:
        return bool(self._members)

    def __contains__(self, call: object) -> bool:
        member = self._members.get(getattr(call, "id", None))  # type: ignore[arg-type]
        return member is not None and member[2] is call

    def __iter__(self) -> Iterator[Any]:
        """The waiting calls, oldest first."""
        return iter(sorted((call for _, _, call in self._members.values()), key=_seq))

    def append(self, call: Any) -> None:
        """Add ``call`` at its place in submission order (the end, unless put back)."""
        item = (call.seq, next(self._entries), call)
        self._members[call.id] = item
        heapq.heappush(self._heap, item)

    def first(self) -> Any:
        """The oldest waiting call (the queue is not empty)."""
        self._prune()
        return self._heap[0][2]

    def popleft(self) -> Any:
        """Take the oldest waiting call.

        Raises:
            IndexError: nothing waits.
        """
        self._prune()
        _, _, call = heapq.heappop(self._heap)
        del self._members[call.id]
        return call

    def remove(self, call: Any) -> None:
        """Take ``call`` out, wherever it waits.

        Raises:
            ValueError: it does not wait here.
        """
        if call not in self:
            raise ValueError(f"call {getattr(call, 'id', call)!r} is not in the queue")
        del self._members[call.id]
        if len(self._heap) > 2 * len(self._members) + 64:
            live = self._members
            self._heap = [e for e in self._heap if live.get(e[2].id) is e]
            heapq.heapify(self._heap)

    def _prune(self) -> None:
        """Drop the top entries of calls that have left."""
        heap, live = self._heap, self._members
        while heap and live.get(heap[0][2].id) is not heap[0]:
            heapq.heappop(heap)


def _seq(call: Any) -> int:
    seq: int = call.seq
    return seq
