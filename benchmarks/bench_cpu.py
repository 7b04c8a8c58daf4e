"""Where a call's CPU goes: host and worker CPU time per call under a fixed load.

    python benchmarks/bench_cpu.py [--workers 2 4] [--in-flight 4 64] [--calls 40000]

Throughput tells how fast; this tells which process is the limit. Each line: calls/s, the
host's CPU per call, the workers' CPU per call (summed), and how many cores the host used.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import psutil
import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import snakepit_trio as sp

ADAPTER = "bench_adapter:Bench"


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


async def measure(workers: int, in_flight: int, calls: int) -> str:
    async with sp.open_pool(ADAPTER, size=workers) as pool:
        procs = [psutil.Process(w.pid) for w in pool.workers()]
        me = psutil.Process()

        async def run(n: int) -> None:
            for i in range(n):
                await pool.execute("ping", {"x": i})

        async with trio.open_nursery() as nursery:  # warm-up
            for _ in range(in_flight):
                nursery.start_soon(run, 20)
        per_task = calls // in_flight
        host0, workers0 = _cpu(me), [_cpu(p) for p in procs]
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(in_flight):
                nursery.start_soon(run, per_task)
        elapsed = time.perf_counter() - start
        done = per_task * in_flight
        host = (_cpu(me) - host0) / done * 1e6
        worker = sum(_cpu(p) - w0 for p, w0 in zip(procs, workers0, strict=True)) / done * 1e6
    return (
        f"{workers} workers, {in_flight} in flight: {done / elapsed:,.0f} calls/s; "
        f"host CPU {host:.1f} µs/call, workers {worker:.1f} µs/call; "
        f"host busy {host * done / elapsed / 1e6:.2f} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="*", default=[2, 4])
    parser.add_argument("--in-flight", type=int, nargs="*", default=[4, 64])
    parser.add_argument("--calls", type=int, default=40000)
    args = parser.parse_args()
    for workers in args.workers:
        for in_flight in args.in_flight:
            calls = args.calls if in_flight > 4 else args.calls // 5
            print(trio.run(measure, workers, in_flight, calls))


if __name__ == "__main__":
    main()
