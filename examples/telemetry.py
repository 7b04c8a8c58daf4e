"""Observability: a per-tool latency table built from telemetry events, and, when
OpenTelemetry's SDK is installed (pip install 'snakepit_trio[otel]' opentelemetry-sdk), the
trace of a call printed by a console exporter.

Run from the repository root:  python examples/telemetry.py
"""

from __future__ import annotations

import statistics
from collections import defaultdict

import trio

import snakepit_trio as sp
from snakepit_trio.telemetry import Event


class LatencyTable:
    """A handler: call.stop events by tool (handlers run inline: keep them this cheap)."""

    def __init__(self) -> None:
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.waits: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)

    def __call__(self, event: Event) -> None:
        tool = event.metadata["tool"]
        self.durations[tool].append(event.measurements["duration"])
        self.waits[tool].append(event.measurements.get("queue_wait", 0.0))
        if event.metadata["outcome"] != "ok":
            self.errors[tool] += 1

    def print(self) -> None:
        print(f"{'tool':<10} {'calls':>5} {'errors':>6} {'p50 ms':>7} {'max ms':>7} {'wait ms':>7}")
        for tool in sorted(self.durations):
            d = self.durations[tool]
            print(
                f"{tool:<10} {len(d):>5} {self.errors[tool]:>6} "
                f"{statistics.median(d) * 1e3:>7.1f} {max(d) * 1e3:>7.1f} "
                f"{statistics.median(self.waits[tool]) * 1e3:>7.1f}"
            )


async def latency_table() -> None:
    table = LatencyTable()
    worker_events: dict[str, int] = defaultdict(int)

    def count(event: Event) -> None:
        worker_events[event.name] += 1

    # Process-wide: it also sees what the workers emit while they start.
    sp.telemetry.attach("worker events", "adapter.*", count)
    try:
        async with sp.open_pool("telemetry_adapter:Model", size=2) as pool:
            pool.telemetry.attach("latency", "call.stop", table)
            async with trio.open_nursery() as nursery:
                for i in range(40):
                    nursery.start_soon(pool.execute, "classify", {"text": f"the cat sat {i}"})
                for _ in range(5):
                    nursery.start_soon(pool.execute, "summarize", {"text": "a long text " * 5})
            for _ in range(3):
                try:
                    await pool.execute("broken")
                except sp.RemoteError:
                    pass
    finally:
        sp.telemetry.detach("worker events")
    table.print()
    for name in sorted(worker_events):
        print(f"worker event {name}: {worker_events[name]}")


async def console_trace() -> None:
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError:
        print("no trace: install 'snakepit_trio[otel]' and opentelemetry-sdk to see one")
        return
    from snakepit_trio.contrib.otel import instrument

    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(
            ConsoleSpanExporter(
                formatter=lambda s: (
                    f"span {s.name} kind={s.kind.name} trace={s.context.trace_id:032x} "
                    f"parent={s.parent.span_id:016x}\n"
                    if s.parent
                    else f"span {s.name} kind={s.kind.name} trace={s.context.trace_id:032x}\n"
                )
            )
        )
    )
    tracer = provider.get_tracer("example")
    async with sp.open_pool("telemetry_adapter:Model", size=1) as pool:
        # Workers trace their side too; to export their spans, give them OTEL_* variables
        # (env={"OTEL_TRACES_EXPORTER": "otlp", ...}).
        with (
            instrument(pool, tracer_provider=provider, metrics=False),
            tracer.start_as_current_span("request"),
        ):
            await pool.execute("classify", {"text": "the cat"})


async def main() -> None:
    await latency_table()
    await console_trace()


if __name__ == "__main__":
    trio.run(main)
