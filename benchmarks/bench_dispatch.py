"""The dispatcher's own cost per call, by pool size: pure Python, no processes.

    python benchmarks/bench_dispatch.py [--workers 2 8 64 256 1000] [--deep 10000]
        [--repeats 7] [--seconds 0.3]

Each row times making a call, ``submit`` and ``complete``, over and over, on a dispatcher
whose workers (capacity 2) each run one call already, so every worker has one free slot and
each submit has them all to choose from. The last row keeps ``--deep`` calls waiting in the
pool queue of the largest pool, every slot taken: each completion sends the oldest waiting
call, each submit joins the queue (with a ``max_queue`` to check). A figure is the median of
``--repeats`` runs of about ``--seconds`` each (sized by a warm-up run), each on a fresh
dispatcher with the garbage collector off, in CPU time of this process (other work on the
machine counts less than in wall time); the last column divides it by the first row's
(2 workers): the dispatcher's per-call cost should not grow with the number of workers.
"""

from __future__ import annotations

import argparse
import collections
import gc
import itertools
import statistics
import time

from snakepit_trio._core._dispatcher import Call, Dispatcher

CAPACITY = 2


def _pool(workers: int, queued: int) -> tuple[Dispatcher, itertools.count[int]]:
    """A dispatcher with every worker running one call (two when ``queued``: all full) and
    ``queued`` calls waiting."""
    d = Dispatcher(max_queue=None if not queued else 10 * queued)
    ids = itertools.count(1)
    for w in range(workers):
        d.add_worker(f"w{w}", CAPACITY)
    for _ in range(workers * (CAPACITY if queued else 1) + queued):
        d.submit(Call(next(ids), "t"))
    assert d.in_flight == workers * (CAPACITY if queued else 1) and d.queued == queued
    return d, ids


def _run(workers: int, queued: int, calls: int) -> float:
    """CPU seconds per submit + complete."""
    d, ids = _pool(workers, queued)
    submit, complete = d.submit, d.complete
    if queued:
        # Oldest first: each completion sends the oldest waiting call, which runs next.
        running = collections.deque(sorted(d.calls.values(), key=lambda c: c.id)[: d.in_flight])

        def step() -> None:
            call = running.popleft()
            for action in complete(call.id, call.worker):
                running.append(action.call)
            submit(Call(next(ids), "t"))

    else:

        def step() -> None:
            call = Call(next(ids), "t")
            submit(call)
            complete(call.id, call.worker)

    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(calls):
            step()
        return (time.process_time() - start) / calls
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 8, 64, 256, 1000])
    parser.add_argument("--deep", type=int, default=10_000, help="queued calls in the last row")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3, help="CPU time per run, about")
    args = parser.parse_args()
    rows = [(n, 0) for n in args.workers]
    if args.deep:
        rows.append((max(args.workers), args.deep))
    print(f"| workers | queued | submit + complete, CPU µs per call | vs {rows[0][0]:,} workers |")
    print("|---:|---:|---:|---:|")
    first = None
    for workers, queued in rows:
        calls = max(100, int(args.seconds / _run(workers, queued, 200)))  # warm-up
        cost = statistics.median(_run(workers, queued, calls) for _ in range(args.repeats))
        first = first or cost
        print(f"| {workers:,} | {queued:,} | {cost * 1e6:.2f} | {cost / first:.2f}x |")


if __name__ == "__main__":
    main()
