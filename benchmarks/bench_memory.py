"""Host memory per queued call: what a deep queue costs the host.

    python benchmarks/bench_memory.py [--queued 100000] [--repeats 3]

One worker is kept busy by a long call, so every other call waits in the pool's queue. Two
figures per run, both as bytes per queued call:
- pool: memory allocated by the package's own code for a waiting call (the dispatcher's
  call record, its handle, the frames it waits in), measured with tracemalloc filtered to
  snakepit_trio's files (its encoded arguments are allocated by msgpack: counted in "all");
- all: everything the host allocated while the calls were submitted and waited, the callers'
  Trio tasks and coroutine frames included (tracemalloc, unfiltered).
The medians of the repeats are printed.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tracemalloc

import trio
import trio.testing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import snakepit_trio as sp

ADAPTER = "bench_adapter:Bench"


def _bytes(snapshot: tracemalloc.Snapshot, base: tracemalloc.Snapshot, ours: bool) -> int:
    if ours:
        filters = [tracemalloc.Filter(True, "*snakepit_trio*")]
        snapshot, base = snapshot.filter_traces(filters), base.filter_traces(filters)
    return sum(stat.size_diff for stat in snapshot.compare_to(base, "filename"))


async def measure(queued: int) -> tuple[float, float]:
    async with sp.open_pool(ADAPTER, size=1, worker_capacity=1, prefetch=0) as pool:

        async def hold() -> None:
            with trio.move_on_after(3600):
                await pool.execute("hold", {"seconds": 3600})

        async def caller(i: int) -> None:
            await pool.execute("ping", {"x": i})

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hold)
            await trio.testing.wait_all_tasks_blocked()  # hold's call is sent: the slot is taken
            assert pool.stats().in_flight == 1
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.take_snapshot()
            for i in range(queued):
                nursery.start_soon(caller, i)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.stats().queued == queued, pool.stats()
            gc.collect()
            snapshot = tracemalloc.take_snapshot()
            tracemalloc.stop()
            ours = _bytes(snapshot, base, ours=True) / queued
            total = _bytes(snapshot, base, ours=False) / queued
            del snapshot, base
            nursery.cancel_scope.cancel()
    return ours, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ours, total = [], []
    for _ in range(args.repeats):
        o, t = trio.run(measure, args.queued)
        ours.append(o)
        total.append(t)
    print(
        f"{args.queued:,} calls queued: pool {statistics.median(ours):,.0f} bytes/call, "
        f"all (callers' tasks included) {statistics.median(total):,.0f} bytes/call "
        f"(medians of {args.repeats})"
    )


if __name__ == "__main__":
    main()
