"""What telemetry costs: calls/s with 64 calls in flight on 2 workers, every mode in one run.

    python benchmarks/bench_telemetry.py [--rounds 7] [--calls 20000] [--baseline REF]

Modes, interleaved round by round, each trial in a fresh interpreter (so no mode inherits
another's warm caches), each trial the median of 3 measurements on one pool, each
measurement giving calls/s and the CPU time per call of the host and of the workers (CPU
time barely moves when other programs load the machine; calls/s does):
- baseline: the package as it was at git REF, extracted with ``git archive`` (no emission
  point at all); only with ``--baseline`` (``d171df2`` is the last commit before telemetry);
- off: this tree with nothing attached: every emission point tests one flag;
- handler: one handler attached to ``call.*`` (it counts the events it gets);
- tracing: OpenTelemetry's SDK sampling every call, spans to an in-memory exporter, metrics
  to an in-memory reader (skipped when the SDK is not installed).
Prints medians, and each mode's ratio to ``off`` (and to ``baseline``) as the median of the
per-round ratios (a round's trials run back to back, so they share its load); ``suite.py``
runs it as part of the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODES = ("baseline", "off", "handler", "tracing")
IN_FLIGHT = 64
WORKERS = 2


def _trial(mode: str, calls: int) -> dict[str, float]:
    """In a fresh interpreter: one pool, three measurements, their medians (calls/s, and
    µs of CPU per call in the host and in its workers)."""
    import psutil
    import trio

    import snakepit_trio as sp

    per_task = calls // IN_FLIGHT

    def worker_cpu(pool: Any) -> float:
        total = 0.0
        for worker in pool.workers():
            times = psutil.Process(worker.pid).cpu_times()
            total += times.user + times.system
        return total

    async def measure(pool: Any) -> tuple[float, float, float]:
        async def run(n: int) -> None:
            for i in range(n):
                await pool.execute("ping", {"x": i})

        done = per_task * IN_FLIGHT
        workers = worker_cpu(pool)
        cpu = time.process_time()
        t = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(IN_FLIGHT):
                nursery.start_soon(run, per_task)
        elapsed = time.perf_counter() - t
        host_us = (time.process_time() - cpu) / done * 1e6
        return done / elapsed, host_us, (worker_cpu(pool) - workers) / done * 1e6

    async def main() -> dict[str, float]:
        async with sp.open_pool("bench_adapter:Bench", size=WORKERS) as pool:
            if mode == "handler":
                counted = [0]

                def count(event: Any) -> None:
                    counted[0] += 1

                pool.telemetry.attach("count", "call.*", count)
            elif mode == "tracing":
                from opentelemetry.sdk.metrics import MeterProvider
                from opentelemetry.sdk.metrics.export import InMemoryMetricReader
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import SimpleSpanProcessor
                from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                    InMemorySpanExporter,
                )

                from snakepit_trio.contrib.otel import instrument

                provider = TracerProvider()
                exporter = InMemorySpanExporter()
                provider.add_span_processor(SimpleSpanProcessor(exporter))
                meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
                instrument(pool, tracer_provider=provider, meter_provider=meters)
            await measure(pool)  # warm-up
            figures = []
            for _ in range(3):
                figures.append(await measure(pool))
                if mode == "tracing":
                    exporter.clear()
            rate, host, workers = (statistics.median(f) for f in zip(*figures, strict=True))
            return {"rate": rate, "host_us": host, "worker_us": workers}

    return trio.run(main)


def _baseline_tree(ref: str, into: str) -> str:
    """The package at ``ref``, extracted into ``into``; its path for PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "snakepit_trio"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return into


def _has_sdk() -> bool:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


def run(rounds: int, calls: int, baseline: str | None) -> dict[str, Any]:
    """Every mode ``rounds`` times, interleaved; medians and ratios."""
    modes = [m for m in MODES if (m != "baseline" or baseline) and (m != "tracing" or _has_sdk())]
    trials: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        trees = {m: str(ROOT) for m in modes}
        if baseline:
            trees["baseline"] = _baseline_tree(baseline, tmp)
        for r in range(rounds):
            for mode in modes if r % 2 == 0 else reversed(modes):  # no mode always first
                env = {**os.environ, "PYTHONPATH": os.pathsep.join([trees[mode], str(HERE)])}
                out = subprocess.run(
                    [sys.executable, __file__, "--trial", mode, "--calls", str(calls)],
                    env=env,
                    cwd=HERE,
                    check=True,
                    capture_output=True,
                    text=True,
                    timeout=600,
                ).stdout
                trials[mode].append(json.loads(out.splitlines()[-1]))
                t = trials[mode][-1]
                print(
                    f"round {r + 1}: {mode} {t['rate']:,.0f}/s, host {t['host_us']:.1f} µs, "
                    f"workers {t['worker_us']:.1f} µs per call",
                    file=sys.stderr,
                )
    keys = ("rate", "host_us", "worker_us")
    medians = {m: {k: statistics.median(t[k] for t in v) for k in keys} for m, v in trials.items()}
    ratios = {
        against: {
            m: {
                k: statistics.median(a[k] / b[k] for a, b in zip(v, trials[against], strict=True))
                for k in keys
            }
            for m, v in trials.items()
        }
        for against in ("off", "baseline")
        if against in trials
    }
    return {"trials": trials, "medians": medians, "ratios": ratios, "baseline_ref": baseline}


def render(result: dict[str, Any]) -> str:
    medians, ratios = result["medians"], result["ratios"]
    lines = [
        f"| telemetry, {IN_FLIGHT} in flight, {WORKERS} workers | calls/s | host µs/call | "
        "workers µs/call | calls/s vs off | host CPU vs off | calls/s vs baseline | "
        "host CPU vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "baseline": f"no telemetry (package at {result['baseline_ref']})",
        "off": "telemetry, nothing attached",
        "handler": "one handler on call.*",
        "tracing": "OpenTelemetry SDK, every call sampled",
    }
    for mode, m in medians.items():
        cells = [f"{m['rate']:,.0f}", f"{m['host_us']:.1f}", f"{m['worker_us']:.1f}"]
        for against in ("off", "baseline"):
            r = ratios.get(against, {}).get(mode)
            cells += [f"{r['rate']:.3f}x", f"{r['host_us']:.3f}x"] if r else ["n/a", "n/a"]
        lines.append(f"| {labels[mode]} | " + " | ".join(cells) + " |")
    lines.append(
        "\nRatios are medians of per-round ratios (each round runs every mode back to back)."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--baseline", default=None, help="git ref of a tree without telemetry")
    parser.add_argument("--trial", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trial:
        print(json.dumps(_trial(args.trial, args.calls)))
        return
    result = run(args.rounds, args.calls, args.baseline)
    print(render(result))


if __name__ == "__main__":
    main()
