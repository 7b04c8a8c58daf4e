"""How many items the next chunk of a map carries, for ``chunksize="auto"``.

Why chunks: a call has a fixed cost (a frame each way, a wake-up of each process), about
0.1-0.3 ms; for items that run in microseconds that is nearly all of their cost. A chunk is
one call that runs its items one after another in one worker, so its items share that cost.
But a chunk holds its items until the last one has run, all on one worker: chunks of items
that take milliseconds would keep them from spreading over the workers, and one slow item
would hold the rest of its chunk back. So a chunk should run for about ``target`` seconds:
long enough that the fixed cost is a small share, short enough that items that take about
that long or more go one to a call.

Rules:

- The first chunk is one item: nothing is known yet.
- A chunk that ran reports how many of its items ran, how long it ran in its worker and how
  many bytes its arguments and results took: a cost per item, in seconds and bytes. What
  fits at a cost is as many items as run for ``target`` seconds and take ``byte_budget``
  bytes, within [1, ``largest``]. A report of no item, or of a run time that is negative,
  infinite or NaN, changes nothing.
- Fewer than the current size fit at the reported cost: the size drops to what fits at
  once, so slow items go one to a call from the next chunk on.
- Otherwise the size may grow: to at most twice the items of the chunk that reported (never
  more than double what was measured), and to at most what fits at the recent cost (a
  moving average of the reported costs, so that after a slow item, chunks of fast items do
  not grow past what the mix of both fits). Under a constant cost per item the size never
  shrinks and reaches what fits after at most log2(``largest``) reports.
- A chunk that failed as a whole (its worker crashed, ...) tells nothing about the cost of
  its items: the size goes back to 1, so a failure that repeats takes few items with it.
- A chunk whose arguments together were too large to send: at most half its items next.

Pure, like the rest of ``_core``: run times and byte counts come in as numbers.
"""

from __future__ import annotations

import math

import attrs

TARGET = 0.005  # seconds a chunk should run in its worker
BYTE_BUDGET = 1 << 20  # bytes of arguments and results a chunk should carry
LARGEST = 1024  # items in a chunk, at most
SMOOTHING = 0.2  # the weight of the latest report in the recent cost


@attrs.define
class ChunkSizer:
    """The size of the next chunk, from the reports of the chunks that ran."""

    target: float = TARGET
    byte_budget: int = BYTE_BUDGET
    largest: int = LARGEST
    size: int = 1  # the next chunk's items
    seconds: float | None = None  # recent cost per item (None: no report yet)
    bytes: float = 0.0

    def ran(self, items: int, run_time: float, size: int) -> int:
        """A chunk ran ``items`` items in ``run_time`` seconds, with ``size`` bytes of
        arguments and results; returns the next size."""
        if items < 1 or not 0 <= run_time < math.inf or size < 0:
            return self.size  # nothing ran, or a time that means nothing: nothing learned
        seconds, nbytes = run_time / items, size / items
        if self.seconds is None:
            self.seconds, self.bytes = seconds, nbytes
        else:
            self.seconds += SMOOTHING * (seconds - self.seconds)
            self.bytes += SMOOTHING * (nbytes - self.bytes)
        fits = self._fits(seconds, nbytes)
        if fits < self.size:
            self.size = fits
        else:
            recent = self._fits(self.seconds, self.bytes)
            self.size = max(self.size, min(fits, recent, 2 * items))
        return self.size

    def failed(self) -> int:
        """A chunk failed as a whole; returns the next size (1)."""
        self.size = 1
        return self.size

    def too_large(self, items: int) -> int:
        """The arguments of a chunk of ``items`` items were too large to send together;
        returns the next size (at most half of them)."""
        self.size = max(1, min(self.size, items // 2))
        return self.size

    def _fits(self, seconds: float, nbytes: float) -> int:
        """How many items run for ``target`` seconds and take ``byte_budget`` bytes, at
        ``seconds`` and ``nbytes`` an item."""
        by_time = self.target / seconds if seconds > 0 else math.inf
        by_bytes = self.byte_budget / nbytes if nbytes > 0 else math.inf
        fits = min(by_time, by_bytes, float(self.largest))
        return max(1, int(fits))  # int of a float at most ``largest``: never inf or NaN
