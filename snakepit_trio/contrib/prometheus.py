"""Prometheus metrics for pools (extra ``prometheus``): a collector, and a Trio task serving it.

    registry = prometheus_client.CollectorRegistry()
    collector = PoolCollector(pool, registry=registry)      # more pools: collector.add(p)
    port = await nursery.start(serve, 9464, registry)         # GET /metrics

Gauges and counters are read from each pool's ``stats()`` when Prometheus scrapes, so they
cost nothing between scrapes. The two histograms, call duration and queue wait, are fed by a
telemetry handler on ``call.stop`` and ``stream.stop``, labelled by pool, tool and outcome
only (never by call or session: their cardinality stays that of the tools). One collector
serves any number of pools; registering a second one in the same registry fails with
prometheus_client's "Duplicated timeseries" (add the pool to the first instead).

Metrics: ``snakepit_workers{pool,state}`` (available, busy), ``snakepit_queued_calls``,
``snakepit_in_flight_calls``, ``snakepit_sessions``, ``snakepit_healthy`` (1 or 0), the
counters ``snakepit_requests_total``, ``snakepit_errors_total``,
``snakepit_queue_timeouts_total``, ``snakepit_saturated_total``,
``snakepit_worker_restarts_total``, ``snakepit_worker_crashes_total``,
``snakepit_worker_recycles_total``, ``snakepit_events_dropped_total``, and the histograms
``snakepit_call_duration_seconds{pool,tool,outcome}`` and
``snakepit_queue_wait_seconds{pool,tool}``.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Iterator
from typing import Any

import trio

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - the extra is installed where this is tested
    raise ImportError(
        f"snakepit_trio.contrib.prometheus needs prometheus-client ({exc}); install it with "
        "pip install 'snakepit_trio[prometheus]'"
    ) from exc

from .._core import _checks as checks
from .._pool import Pool
from .._stats import PoolStats
from ..telemetry._hub import Event
from ..telemetry._snapshot import Snapshot

__all__ = ["PoolCollector", "serve"]

# Seconds: from a fast call's round trip to a long inference.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
MAX_HEAD = 8192  # bytes of a scrape request's line and headers
REQUEST_TIMEOUT = 10.0  # seconds a scrape connection may take to send its request
_names = itertools.count(1)

_COUNTERS = (
    ("requests", "requests", "Calls submitted"),
    ("errors", "errors", "Calls that ended with an error"),
    ("queue_timeouts", "queue_timeouts", "Calls that failed with QueueTimeout"),
    ("saturated", "saturated", "Calls refused with PoolSaturated"),
    ("worker_restarts", "restarts", "Workers started to replace one that died"),
    ("worker_crashes", "crashes", "Workers that died without being asked to"),
    ("worker_recycles", "recycles", "Workers replaced by max_requests, max_age, max_memory_mb"),
    ("events_dropped", "events_dropped", "Telemetry events a subscription had no room for"),
)
_GAUGES = (
    ("queued_calls", "queued", "Calls waiting for a worker"),
    ("in_flight_calls", "in_flight", "Calls sent to a worker and not yet answered"),
    ("sessions", "sessions", "Open sessions"),
)


class _Histogram:
    """Bucket counts by label values (what prometheus_client's Histogram keeps, scraped here)."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.bounds = buckets
        self.series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = ([0] * (len(self.bounds) + 1), [0.0])
        counts, total = series
        counts[bisect.bisect_left(self.bounds, value)] += 1
        total[0] += value

    def family(self, name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, doc, labels=labels)
        for values, (counts, total) in self.series.items():
            cumulative = list(itertools.accumulate(counts))
            buckets = [(_bound(b), c) for b, c in zip(self.bounds, cumulative, strict=False)]
            buckets.append(("+Inf", cumulative[-1]))
            family.add_metric(list(values), buckets, total[0])
        return family


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


class _Watched:
    def __init__(self, pool: Pool, handler: str) -> None:
        engine = pool._engine
        self.name = engine.config.name
        self.pool = pool
        self.handler = handler
        self.stats: Snapshot[PoolStats] = Snapshot(pool.stats, lambda: False)


class PoolCollector(Collector):
    """The metrics of one or more pools, for a prometheus_client registry.

    Args:
        *pools: the pools to report (more can be added with ``add``).
        registry: register in this registry (None: the caller registers it, or not).
        buckets: the histograms' upper bounds, in seconds, increasing (default ``BUCKETS``:
            0.5 ms to 60 s).

    Raises:
        TypeError: a pool that is not a Pool, or buckets that are not numbers.
        ValueError: buckets not increasing, or a pool given twice.
    """

    def __init__(
        self,
        *pools: Pool,
        registry: CollectorRegistry | None = None,
        buckets: Iterable[float] | None = None,
    ) -> None:
        bounds: list[float] = []
        for i, b in enumerate(BUCKETS if buckets is None else buckets):
            bound = checks.number(f"buckets[{i}]", b, minimum=None, inf="the last bucket")
            assert bound is not None
            bounds.append(bound)
        if not bounds or any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ValueError(f"buckets must be increasing numbers of seconds; got {bounds!r}")
        # +Inf is always the last bucket; an infinite bound given is that one.
        self._buckets: tuple[float, ...] = tuple(b for b in bounds if b != math.inf)
        self._durations = _Histogram(self._buckets)
        self._waits = _Histogram(self._buckets)
        self._watched: dict[int, _Watched] = {}
        for pool in pools:
            self.add(pool)
        if registry is not None:
            registry.register(self)

    def add(self, pool: Pool) -> None:
        """Report ``pool`` too (its name is the ``pool`` label).

        Args:
            pool: an open pool.

        Raises:
            TypeError: not a Pool.
            ValueError: it is reported already.
        """
        if not isinstance(pool, Pool):
            raise TypeError(f"pool must be a snakepit_trio.Pool; got {checks.shown(pool)}")
        if id(pool._engine) in self._watched:
            raise ValueError(f"pool {pool.config.name!r} is reported by this collector already")
        handler = f"snakepit_trio.prometheus-{next(_names)}"
        name = pool.config.name
        pool.telemetry.attach(handler, ["call.stop", "stream.stop"], lambda e: self._ended(name, e))
        self._watched[id(pool._engine)] = _Watched(pool, handler)

    def remove(self, pool: Pool) -> bool:
        """Stop reporting ``pool`` (its histograms' series stay until the process ends).

        Args:
            pool: a pool added earlier.

        Returns:
            True if it was reported, False otherwise.

        Raises:
            Nothing.
        """
        watched = self._watched.pop(id(getattr(pool, "_engine", None)), None)
        if watched is None:
            return False
        watched.pool.telemetry.detach(watched.handler)
        return True

    def _ended(self, pool: str, event: Event) -> None:
        tool = str(event.metadata["tool"])
        self._durations.observe(
            (pool, tool, str(event.metadata["outcome"])), event.measurements["duration"]
        )
        wait = event.measurements.get("queue_wait")
        if wait is not None:
            self._waits.observe((pool, tool), wait)

    def describe(self) -> Iterable[Metric]:
        """The metric names, without values (for a registry's duplicate check).

        Returns:
            Every metric family this collector yields, empty.

        Raises:
            Nothing.
        """
        return list(self._families({}))

    def collect(self) -> Iterable[Metric]:
        """Every pool's metrics, read now (Prometheus calls this on each scrape).

        Returns:
            The metric families.

        Raises:
            Nothing; a pool that cannot be read (its Trio run is over) is left out.
        """
        stats = {}
        for watched in list(self._watched.values()):
            snapshot = watched.stats()
            if snapshot is not None:
                stats[watched.name] = snapshot
        return list(self._families(stats))

    def _families(self, stats: dict[str, PoolStats]) -> Iterator[Metric]:
        workers = GaugeMetricFamily("snakepit_workers", "Live workers", labels=["pool", "state"])
        healthy = GaugeMetricFamily("snakepit_healthy", "1 if the pool is healthy", labels=["pool"])
        for pool, s in stats.items():
            workers.add_metric([pool, "available"], s.available)
            workers.add_metric([pool, "busy"], s.busy)
            healthy.add_metric([pool], 1 if s.health == "healthy" else 0)
        yield workers
        yield healthy
        for name, field, doc in _GAUGES:
            gauge = GaugeMetricFamily(f"snakepit_{name}", doc, labels=["pool"])
            for pool, s in stats.items():
                gauge.add_metric([pool], getattr(s, field))
            yield gauge
        for name, field, doc in _COUNTERS:
            counter = CounterMetricFamily(f"snakepit_{name}", doc, labels=["pool"])
            for pool, s in stats.items():
                counter.add_metric([pool], getattr(s, field))
            yield counter
        durations = self._durations if stats else _Histogram(self._buckets)
        waits = self._waits if stats else _Histogram(self._buckets)
        yield durations.family(
            "snakepit_call_duration_seconds",
            "Duration of calls and streams, queue wait included",
            ["pool", "tool", "outcome"],
        )
        yield waits.family(
            "snakepit_queue_wait_seconds", "Time calls waited for a worker", ["pool", "tool"]
        )


async def serve(
    port: int = 9464,
    registry: CollectorRegistry | None = None,
    *,
    host: str = "127.0.0.1",
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``registry`` to Prometheus over HTTP (``GET /metrics``) until cancelled.

    Start it with ``port = await nursery.start(serve, 9464, registry)``: it reports the port
    once it listens (pass 0 for any free one). Each request is answered from the Trio
    thread (collectors read the pools directly), with the encoding the scraper asks for
    (OpenMetrics or text), then its connection is closed.

    Args:
        port: the TCP port (0: any free one).
        registry: what to serve (default: prometheus_client's global registry).
        host: the address to listen on; the default serves this machine only (``"0.0.0.0"``
            or ``""`` for every interface).
        task_status: given by ``nursery.start``.

    Returns:
        Nothing; it serves until cancelled.

    Raises:
        TypeError, ValueError: a bad port or host.
        OSError: the port cannot be listened on (already in use, say).
    """
    checks.whole("port", port, minimum=0, maximum=65535)
    checks.text("host", host)
    source = REGISTRY if registry is None else registry
    listeners = await trio.open_tcp_listeners(port, host=host or None)
    task_status.started(listeners[0].socket.getsockname()[1])

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            with trio.move_on_after(REQUEST_TIMEOUT):
                await _answer(stream, source)

    await trio.serve_listeners(handle, listeners)


async def _answer(stream: trio.SocketStream, registry: Any) -> None:
    head = b""
    while b"\r\n\r\n" not in head:
        data = await stream.receive_some(4096)
        if not data:
            return
        head += data
        if len(head) > MAX_HEAD:
            await stream.send_all(_response(431, "text/plain", b"request header too large\n"))
            return
    lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    method, _, rest = lines[0].partition(" ")
    path = rest.partition(" ")[0].partition("?")[0]
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    if method not in ("GET", "HEAD"):
        await stream.send_all(_response(405, "text/plain", b"only GET and HEAD\n", allow=True))
    elif path not in ("/metrics", "/"):
        await stream.send_all(_response(404, "text/plain", b"not found; metrics are at /metrics\n"))
    else:
        encoder, content_type = choose_encoder(headers.get("accept", ""))
        body = encoder(registry)
        await stream.send_all(
            _response(200, content_type, b"" if method == "HEAD" else body, length=len(body))
        )


_REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
}


def _response(
    status: int, content_type: str, body: bytes, *, allow: bool = False, length: int | None = None
) -> bytes:
    head = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body) if length is None else length}",
        "Connection: close",
    ]
    if allow:
        head.append("Allow: GET, HEAD")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
