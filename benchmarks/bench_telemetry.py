"""What telemetry costs: calls/s with 64 calls in flight on 2 workers, every mode in one run.

    python benchmarks/bench_telemetry.py [--rounds 7] [--calls 20000] [--baseline REF]

Modes, interleaved round by round, each trial in a fresh interpreter (so no mode inherits
another's warm caches), each trial the median of 3 measurements on one pool:
- baseline: the package as it was at git REF, extracted with ``git archive`` (no emission
  point at all); only with ``--baseline`` (``d171df2`` is the last commit before telemetry);
- off: this tree with nothing attached: every emission point tests one flag;
- handler: one handler attached to ``call.*`` (it counts the events it gets);
- tracing: OpenTelemetry's SDK sampling every call, spans to an in-memory exporter, metrics
  to an in-memory reader (skipped when the SDK is not installed).
Prints medians, and each mode's ratio to ``off`` (and to ``baseline``); ``suite.py`` runs
it as part of the suite.
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


def _trial(mode: str, calls: int) -> float:
    """In a fresh interpreter: one pool, three measurements, their median (calls/s)."""
    import trio

    import snakepit_trio as sp

    per_task = calls // IN_FLIGHT

    async def measure(pool: Any) -> float:
        async def run(n: int) -> None:
            for i in range(n):
                await pool.execute("ping", {"x": i})

        t = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(IN_FLIGHT):
                nursery.start_soon(run, per_task)
        return per_task * IN_FLIGHT / (time.perf_counter() - t)

    async def main() -> float:
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
            rates = []
            for _ in range(3):
                rates.append(await measure(pool))
                if mode == "tracing":
                    exporter.clear()
            return statistics.median(rates)

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
    rates: dict[str, list[float]] = {m: [] for m in modes}
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
                rates[mode].append(json.loads(out.splitlines()[-1])["rate"])
                print(f"round {r + 1}: {mode} {rates[mode][-1]:,.0f}/s", file=sys.stderr)
    medians = {m: statistics.median(v) for m, v in rates.items()}
    return {"rates": rates, "medians": medians, "baseline_ref": baseline}


def render(result: dict[str, Any]) -> str:
    medians = result["medians"]
    lines = [
        f"| telemetry, {IN_FLIGHT} in flight, {WORKERS} workers | calls/s (median) | vs off | "
        "vs baseline |",
        "|---|---:|---:|---:|",
    ]
    labels = {
        "baseline": f"no telemetry (package at {result['baseline_ref']})",
        "off": "telemetry, nothing attached",
        "handler": "one handler on call.*",
        "tracing": "OpenTelemetry SDK, every call sampled",
    }
    for mode, rate in medians.items():
        off = f"{rate / medians['off']:.3f}x"
        base = f"{rate / medians['baseline']:.3f}x" if "baseline" in medians else "n/a"
        lines.append(f"| {labels[mode]} | {rate:,.0f} | {off} | {base} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--baseline", default=None, help="git ref of a tree without telemetry")
    parser.add_argument("--trial", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trial:
        print(json.dumps({"rate": _trial(args.trial, args.calls)}))
        return
    result = run(args.rounds, args.calls, args.baseline)
    print(render(result))


if __name__ == "__main__":
    main()
