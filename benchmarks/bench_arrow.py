"""An Arrow table's round trip through a worker, against the same data as numpy arrays.

    python benchmarks/bench_arrow.py [--sizes 10 100] [--repeats 5]

For each size (MB), one worker echoes back (a) a pyarrow.Table of a float64 and an int64
column and (b) the same two columns as numpy arrays in a dict. Both go through shared
memory each way: one copy into a segment on each side, none on receipt. Printed per row:
the first round trip (fresh segments: tmpfs pages allocated; the worker imported pyarrow
before, at a small table) and the median of the others
(segments reused once the last view of them is gone), in ms and GB/s of payload moved both
ways. ``encode`` times the host's encoding alone (what the call site pays).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from typing import Any

import numpy as np
import pyarrow as pa
import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import snakepit_trio as sp
from snakepit_trio._shared._codec import Outbound, encode
from snakepit_trio._shared._segments import SegmentCache

ADAPTER = "bench_adapter:Bench"
MB = 2**20


def payloads(megabytes: int) -> dict[str, Any]:
    rows = megabytes * MB // 16
    rng = np.random.default_rng(0)
    columns = {"x": rng.random(rows), "n": np.arange(rows, dtype=np.int64)}
    return {"table": pa.table(columns), "arrays": columns}


async def _settled(pool: sp.Pool) -> None:
    """Wait until the worker has let go of the host's segments (they are reusable)."""
    segments = pool._engine.payloads.segments
    with trio.fail_after(10):
        # The worker's UNMAPPED_ARGS frame changes it: there is no event to wait on.
        while segments is not None and segments.out_names():  # noqa: ASYNC110
            await trio.sleep(0.001)


async def round_trips(pool: sp.Pool, value: Any, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        back = await pool.execute("echo", {"value": value})
        times.append(time.perf_counter() - start)
        del back  # the host unmaps the worker's segment: it is reused next time
        gc.collect()
        await _settled(pool)
    return times


def encode_time(value: Any, repeats: int) -> float:
    cache = SegmentCache("snakepit-bench-arrow-")
    times = []
    try:
        for _ in range(repeats):
            out = Outbound(cache, MB)
            start = time.perf_counter()
            encode({"value": value}, what="value", limit=1 << 40, shm=out)
            times.append(time.perf_counter() - start)
            out.release()
    finally:
        for name in cache.free_names() + cache.out_names():
            os.unlink(os.path.join("/dev/shm", name))
    return statistics.median(times[1:]) if len(times) > 1 else times[0]


async def main(sizes: list[int], repeats: int) -> None:
    print(f"{'payload':<24}{'first ms':>10}{'reused ms':>11}{'GB/s':>7}{'encode ms':>11}")
    async with sp.open_pool(ADAPTER, size=1, max_payload_bytes=1 << 40) as pool:
        # The worker imports pyarrow at the first table it meets: not part of the figures.
        await pool.execute("echo", {"value": pa.table({"a": [1]})})
        for megabytes in sizes:
            for kind, value in payloads(megabytes).items():
                times = await round_trips(pool, value, repeats + 1)
                first, steady = times[0], statistics.median(times[1:])
                rate = 2 * megabytes * MB / steady / 1e9
                enc = encode_time(value, repeats + 1)
                label = f"{megabytes} MB {kind}"
                print(
                    f"{label:<24}{first * 1e3:>10.1f}{steady * 1e3:>11.1f}{rate:>7.2f}"
                    f"{enc * 1e3:>11.1f}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    trio.run(main, args.sizes, args.repeats)
