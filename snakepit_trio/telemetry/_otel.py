"""OpenTelemetry for a pool: a CLIENT span per call, its context in the CALL frame, metrics.

Imported only for a pool that is traced (``tracing=True`` or
``snakepit_trio.contrib.otel.instrument``): an untraced pool never imports OpenTelemetry,
and a traced one pays for it only in the calls it traces.

Traces (the RPC semantic conventions): each call and stream is a CLIENT span named after
the tool, a child of whatever span is current in the calling task, with ``rpc.system.name``
"snakepit_trio", ``rpc.method`` (the tool), ``rpc.response.status_code`` ("OK" or the
outcome in capitals: "REMOTE", "TIMEOUT", "CRASHED", ...), ``error.type`` on failure, and
``snakepit.pool``, ``snakepit.call_id``, ``snakepit.session_id``, ``snakepit.worker.id``,
``snakepit.queue_wait`` (seconds). When the span is sampled, its W3C context (the global
propagator's) rides in the CALL frame's meta map, to workers that read it ("call_meta"),
and the worker's SERVER span is its child. ``span_from_meta`` opens a span under a context a
worker sent (host tools: the worker's span -> the host tool's INTERNAL span -> calls it makes).

Metrics (no per-call or per-session attributes, so their cardinality stays that of the
tools): histograms ``rpc.client.call.duration`` (s; rpc.method, rpc.response.status_code,
snakepit.pool) and ``snakepit.queue.wait`` (s); observable ``snakepit.workers`` (by
``snakepit.worker.state``: available, busy), ``snakepit.queue.depth``, ``snakepit.in_flight``,
and counters ``snakepit.worker.restarts`` and ``snakepit.worker.crashes``, read from
``stats()`` when the meter provider collects.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from .._stats import PoolStats
from ._hub import Event, Hub
from ._snapshot import Snapshot

SYSTEM = "snakepit_trio"
SCOPE = "snakepit_trio"
_names = itertools.count(1)


class PoolTracer:
    """The hub's tracer (``Hub.tracer``): a pool's spans."""

    def __init__(self, pool: str, tracer_provider: Any) -> None:
        provider = tracer_provider or trace.get_tracer_provider()
        self._tracer = provider.get_tracer(SCOPE)
        self._pool = pool

    def start(self, tool: str, call_id: int, session_id: str | None, stream: bool) -> Any:
        attributes: dict[str, Any] = {
            "rpc.system.name": SYSTEM,
            "rpc.method": tool,
            "snakepit.pool": self._pool,
            "snakepit.call_id": call_id,
        }
        if session_id is not None:
            attributes["snakepit.session_id"] = session_id
        if stream:
            attributes["snakepit.stream"] = True
        return self._tracer.start_span(tool, kind=SpanKind.CLIENT, attributes=attributes)

    def meta(self, span: Any) -> dict[str, Any] | None:
        """The CALL frame's meta: the span's context, when it is sampled (else nothing is
        sent, and the worker does no tracing work for the call)."""
        if not span.get_span_context().trace_flags.sampled:
            return None
        carrier: dict[str, Any] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return carrier or None

    def end(self, span: Any, observed: Any, outcome: str, error: BaseException | None) -> None:
        if span.is_recording():
            span.set_attribute(
                "rpc.response.status_code", "OK" if outcome == "ok" else outcome.upper()
            )
            if observed.worker is not None:
                span.set_attribute("snakepit.worker.id", observed.worker)
            if observed.sent_at is not None:
                span.set_attribute("snakepit.queue_wait", observed.sent_at - observed.started_at)
            if error is not None and outcome not in ("cancelled", "abandoned"):
                from ._calls import error_type

                span.set_attribute("error.type", error_type(error))
                span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
        span.end()

    def span_from_meta(
        self, name: str, meta: dict[str, Any] | None, attributes: dict[str, Any]
    ) -> AbstractContextManager[Any]:
        """An INTERNAL span under the trace context a worker sent in ``meta`` (a host
        tool's, under the worker's span), current for the block: calls made in it are its
        children. Without a context in ``meta``, a child of the current span."""
        context = propagate.extract(meta) if meta else None
        attributes = {"snakepit.pool": self._pool, **attributes}
        return self._tracer.start_as_current_span(
            name, context=context, kind=SpanKind.INTERNAL, attributes=attributes
        )


class PoolMetrics:
    """A pool's instruments; histograms fed by a telemetry handler, the rest by stats()."""

    def __init__(self, hub: Hub, stats: Snapshot[PoolStats], meter_provider: Any) -> None:
        provider = meter_provider or metrics.get_meter_provider()
        meter = provider.get_meter(SCOPE)
        self._hub = hub
        self._stats = stats
        self._base = {"snakepit.pool": hub.pool}
        self._duration = meter.create_histogram(
            "rpc.client.call.duration", unit="s", description="Duration of calls and streams"
        )
        self._queue_wait = meter.create_histogram(
            "snakepit.queue.wait", unit="s", description="Time calls waited for a worker"
        )
        meter.create_observable_gauge(
            "snakepit.workers", [self._workers], unit="{worker}", description="Live workers"
        )
        meter.create_observable_gauge(
            "snakepit.queue.depth", [self._queued], unit="{call}", description="Calls waiting"
        )
        meter.create_observable_gauge(
            "snakepit.in_flight", [self._in_flight], unit="{call}", description="Calls running"
        )
        meter.create_observable_counter(
            "snakepit.worker.restarts", [self._restarts], unit="{worker}", description="Restarts"
        )
        meter.create_observable_counter(
            "snakepit.worker.crashes", [self._crashes], unit="{worker}", description="Crashes"
        )
        self.name = f"snakepit_trio.otel-{next(_names)}"
        hub.attach(self.name, ["call.stop", "stream.stop"], self._ended)

    def _ended(self, event: Event) -> None:
        tool = event.metadata["tool"]
        outcome = event.metadata["outcome"]
        attributes = {
            **self._base,
            "rpc.system.name": SYSTEM,
            "rpc.method": tool,
            "rpc.response.status_code": "OK" if outcome == "ok" else outcome.upper(),
        }
        self._duration.record(event.measurements["duration"], attributes)
        wait = event.measurements.get("queue_wait")
        if wait is not None:
            self._queue_wait.record(wait, {**self._base, "rpc.method": tool})

    def _observe(
        self, read: Callable[[PoolStats], Iterable[tuple[float, dict[str, Any]]]]
    ) -> Iterator[Observation]:
        stats = self._stats()
        if stats is None:
            return
        for value, attributes in read(stats):
            yield Observation(value, {**self._base, **attributes})

    def _workers(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observe(
            lambda s: [
                (s.available, {"snakepit.worker.state": "available"}),
                (s.busy, {"snakepit.worker.state": "busy"}),
            ]
        )

    def _queued(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observe(lambda s: [(s.queued, {})])

    def _in_flight(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observe(lambda s: [(s.in_flight, {})])

    def _restarts(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observe(lambda s: [(s.restarts, {})])

    def _crashes(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observe(lambda s: [(s.crashes, {})])

    def close(self) -> None:
        self._hub.detach(self.name)


class Traced:
    """What instrumenting a pool installed; ``close`` takes it off again."""

    def __init__(self, hub: Hub, tracer: PoolTracer, pool_metrics: PoolMetrics | None) -> None:
        self.hub = hub
        self.tracer = tracer
        self.metrics = pool_metrics
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.hub.tracer is self.tracer:
            self.hub.set_tracer(None)
        if self.metrics is not None:
            self.metrics.close()


def install(
    hub: Hub,
    stats: Callable[[], PoolStats],
    is_closed: Callable[[], bool],
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    with_metrics: bool = True,
) -> Traced:
    """Trace a pool's calls (and record its metrics) from now on.

    Raises:
        ValueError: the pool is traced already.
    """
    if hub.tracer is not None:
        raise ValueError(
            f"pool {hub.pool!r} is traced already (tracing=True, or instrument() earlier); "
            "close that instrumentation first"
        )
    tracer = PoolTracer(hub.pool, tracer_provider)
    pool_metrics = None
    if with_metrics:
        pool_metrics = PoolMetrics(hub, Snapshot(stats, is_closed), meter_provider)
    hub.set_tracer(tracer)
    return Traced(hub, tracer, pool_metrics)
