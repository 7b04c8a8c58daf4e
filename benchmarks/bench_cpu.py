"""Where a call's CPU goes: host and worker CPU time per call under a fixed load.

    python benchmarks/bench_cpu.py [--workers 2 4] [--in-flight 4 64] [--calls 40000]
                                   [--profile]

Throughput tells how fast; this tells which process is the limit. Each line: calls/s, the
host's CPU per call, the workers' CPU per call (summed), how many cores the host used, and
how often each side went to sleep per call (voluntary context switches: each is a wake-up
the call waited for).

``--profile`` runs the host under cProfile (which slows Python code two or three times, so
read shares, not absolute figures) and prints its time per call by owner (this package,
Trio and outcome, the socket's send and recv, epoll, the rest) and the package's ten most
costly functions by their own time.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import sys
import time

import psutil
import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import snakepit_trio as sp

ADAPTER = "bench_adapter:Bench"


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _sleeps(proc: psutil.Process) -> int:
    return int(proc.num_ctx_switches().voluntary)


def _owner(filename: str, name: str) -> str:
    if "snakepit_trio" in filename:
        return "snakepit_trio"
    if "/trio/" in filename or "/outcome/" in filename:
        return "trio"
    if filename == "~" and "_socket.socket" in name:
        return "socket " + name.split("'")[1]
    if filename == "~" and "epoll" in name:
        return "epoll"
    return "other"


def _report(profile: cProfile.Profile, done: int) -> str:
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    owners: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    for (filename, line, name), (_, _, own, _, _) in stats.items():
        owners[_owner(filename, name)] += own
        if "snakepit_trio" in filename:
            ours[f"{filename.split('snakepit_trio/')[-1]}:{line}({name})"] += own
    lines = ["  host time per call under cProfile, by owner:"]
    lines += [f"    {k:24s} {v / done * 1e6:7.1f} µs" for k, v in owners.most_common()]
    lines.append("  the package's costliest functions (own time per call):")
    lines += [f"    {v / done * 1e6:7.2f} µs  {k}" for k, v in ours.most_common(10)]
    return "\n".join(lines)


async def measure(workers: int, in_flight: int, calls: int, profile: bool = False) -> str:
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
        sleeps0, worker_sleeps0 = _sleeps(me), sum(_sleeps(p) for p in procs)
        profiler = cProfile.Profile() if profile else None
        start = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        async with trio.open_nursery() as nursery:
            for _ in range(in_flight):
                nursery.start_soon(run, per_task)
        if profiler is not None:
            profiler.disable()
        elapsed = time.perf_counter() - start
        done = per_task * in_flight
        host = (_cpu(me) - host0) / done * 1e6
        worker = sum(_cpu(p) - w0 for p, w0 in zip(procs, workers0, strict=True)) / done * 1e6
        sleeps = (_sleeps(me) - sleeps0) / done
        worker_sleeps = (sum(_sleeps(p) for p in procs) - worker_sleeps0) / done
    line = (
        f"{workers} workers, {in_flight} in flight: {done / elapsed:,.0f} calls/s; "
        f"host CPU {host:.1f} µs/call, workers {worker:.1f} µs/call; "
        f"host busy {host * done / elapsed / 1e6:.2f} cores; "
        f"sleeps per call: host {sleeps:.2f}, workers {worker_sleeps:.2f}"
    )
    return line if profiler is None else line + "\n" + _report(profiler, done)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="*", default=[2, 4])
    parser.add_argument("--in-flight", type=int, nargs="*", default=[4, 64])
    parser.add_argument("--calls", type=int, default=40000)
    parser.add_argument("--profile", action="store_true", help="profile the host (cProfile)")
    args = parser.parse_args()
    for workers in args.workers:
        for in_flight in args.in_flight:
            calls = args.calls if in_flight > 4 else args.calls // 5
            print(trio.run(measure, workers, in_flight, calls, args.profile))


if __name__ == "__main__":
    main()
