"""The workers that may take a call from the pool queue, best first, found in O(log n).

How this works: the dispatcher tells the index each time a worker's room changes (``put``
with how many free slots it has and whether one of them is idle, i.e. below its capacity;
``drop`` when it has none or is gone). ``best`` is the worker a scan would pick: an idle slot
before a prefetch slot, then the most free slots, then the worker added first (its
``order``), so the choice is deterministic and the same as scanning the workers in the order
they joined.

The workers wait in a heap of ``(not idle, -free, order, entry number, worker)``. A worker
has one live entry at most; when its room changes it gets a new entry and the old one stays
in the heap, stale: ``best`` drops stale entries as they reach the top, and the heap is
rebuilt from the live entries once the stale ones outnumber them. Every entry is pushed once
and dropped once, so ``put``, ``drop`` and ``best`` cost O(log n) amortized: a scan of every
worker on each call cost the host more than the call itself in a pool of hundreds.

Pure, like the rest of ``_core``: no I/O, no clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Generic, TypeVar

W = TypeVar("W")

# not idle (False first), -free (more first), order, entry number (never equal), worker
_Entry = tuple[bool, int, int, int, W]


class FreeSlots(Generic[W]):
    """Workers with a free slot, keyed by their ``order`` (unique, the order they joined)."""

    __slots__ = ("_entries", "_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[_Entry[W]] = []
        self._live: dict[int, _Entry[W]] = {}  # order -> the worker's live entry
        self._entries = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[tuple[W, bool, int]]:
        """Each worker with a free slot, as ``(worker, idle, free)``, in no set order."""
        for not_idle, neg_free, _, _, worker in self._live.values():
            yield worker, not not_idle, -neg_free

    def put(self, order: int, worker: W, *, idle: bool, free: int) -> None:
        """``worker`` has ``free`` slots (more than 0), one of them idle or not."""
        live = self._live.get(order)
        if live is not None and live[0] is (not idle) and live[1] == -free:
            return  # unchanged: keep the entry it has
        entry = (not idle, -free, order, next(self._entries), worker)
        self._live[order] = entry
        heapq.heappush(self._heap, entry)
        if len(self._heap) > 2 * len(self._live) + 64:
            self._compact()

    def drop(self, order: int) -> None:
        """The worker keyed ``order`` has no free slot now (or is gone)."""
        if self._live.pop(order, None) is not None and len(self._heap) > 2 * len(self._live) + 64:
            self._compact()

    def best(self) -> W | None:
        """The worker a call from the pool queue goes to, or None if none has room."""
        heap, live = self._heap, self._live
        while heap:
            top = heap[0]
            if live.get(top[2]) is top:
                return top[4]
            heapq.heappop(heap)
        return None

    def _compact(self) -> None:
        """Rebuild the heap from the live entries: called once the stale ones outnumber them
        (by 64, so that a small pool does not rebuild it all the time)."""
        self._heap = list(self._live.values())
        heapq.heapify(self._heap)

    @property
    def entries(self) -> int:
        """Entries in the heap, stale ones included (for checks: at most 2 per live + 64)."""
        return len(self._heap)
