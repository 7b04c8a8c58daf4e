"""Pool layer: OpenTelemetry on a pool in memory (host side: spans, metrics, instrumenting)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import trio
import trio.testing
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import snakepit_trio as sp
from snakepit_trio.contrib.otel import instrument
from snakepit_trio.testing import open_fake_pool
from tests.adapters.telemetry import Telemetry

Clock = trio.testing.MockClock


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


async def test_each_call_is_a_client_span_with_the_rpc_conventions(autojump_clock: Clock) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with open_fake_pool(Telemetry, size=1) as pool:
        with instrument(pool, tracer_provider=provider, metrics=False) as inst:
            assert "open" in repr(inst)
            await pool.execute("asleep", {"seconds": 2})
            with pytest.raises(sp.RequestTimeout):
                await pool.execute("asleep", {"seconds": 60}, timeout=1)
            async with pool.session("s") as session:
                await session.execute("infer", {"tokens": 1})
        assert "closed" in repr(inst)
        await pool.execute("infer", {"tokens": 1})  # not traced any more
        assert pool._engine.telemetry.on is False
    ok, timed_out, in_session = exporter.get_finished_spans()
    assert ok.name == "asleep" and ok.kind is SpanKind.CLIENT
    assert ok.attributes is not None and timed_out.attributes is not None
    assert ok.attributes["rpc.method"] == "asleep"
    assert ok.attributes["rpc.response.status_code"] == "OK"
    assert ok.attributes["snakepit.worker.id"] == "fake-0"
    assert ok.end_time is not None and ok.start_time is not None
    assert timed_out.attributes["rpc.response.status_code"] == "TIMEOUT"
    assert timed_out.attributes["error.type"] == "RequestTimeout"
    assert timed_out.status.status_code is StatusCode.ERROR
    assert in_session.attributes is not None
    assert in_session.attributes["snakepit.session_id"] == "s"


async def test_metrics_have_no_per_call_attributes(autojump_clock: Clock) -> None:
    reader = InMemoryMetricReader()
    async with open_fake_pool(Telemetry, size=2) as pool:
        instrument(pool, meter_provider=MeterProvider(metric_readers=[reader]))
        for _ in range(3):
            await pool.execute("asleep", {"seconds": 1})
        with pytest.raises(sp.RemoteError):
            await pool.execute("spanned", {"fail": True})
        got = points(reader)
        # Read from another thread, as a periodic reader does: the pool's thread answers.
        in_thread = await trio.to_thread.run_sync(points, reader)
    durations = {
        p.attributes["rpc.response.status_code"]: p for p in got["rpc.client.call.duration"]
    }
    assert durations["OK"].count == 3 and durations["OK"].sum == 3
    assert durations["REMOTE"].count == 1
    for point in got["rpc.client.call.duration"] + got["snakepit.queue.wait"]:
        assert set(point.attributes) <= {
            "snakepit.pool",
            "rpc.system.name",
            "rpc.method",
            "rpc.response.status_code",
        }
    workers = {p.attributes["snakepit.worker.state"]: p.value for p in got["snakepit.workers"]}
    assert workers == {"available": 2, "busy": 0}
    assert [p.value for p in got["snakepit.queue.depth"]] == [0]
    assert [p.value for p in in_thread["snakepit.workers"]] == [2, 0]
    after = points(reader)  # the pool is closed: its gauges say nothing more
    assert "snakepit.workers" not in after or not after["snakepit.workers"]


async def test_tracing_true_uses_the_global_providers(autojump_clock: Clock) -> None:
    async with open_fake_pool(Telemetry, size=1, tracing=True) as pool:
        assert pool.config.tracing is True
        assert pool._engine.telemetry.tracer is not None
        assert await pool.execute("ameta") is None  # no SDK set globally: nothing sampled
        with pytest.raises(ValueError, match="traced already"):
            instrument(pool)


async def test_instrument_checks_its_arguments(autojump_clock: Clock) -> None:
    with pytest.raises(TypeError, match=r"pool must be a snakepit_trio\.Pool"):
        instrument("pool")  # type: ignore[arg-type]
    async with open_fake_pool(Telemetry, size=1) as pool:
        with pytest.raises(TypeError, match="metrics must be True or False"):
            instrument(pool, metrics=1)  # type: ignore[arg-type]
        assert pool._engine.telemetry.on is False


async def test_tracing_without_opentelemetry_names_the_extra(
    autojump_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "snakepit_trio.telemetry._otel", None)
    with pytest.raises(ImportError, match=r"pip install 'snakepit_trio\[otel\]'"):
        async with open_fake_pool(Telemetry, size=1, tracing=True):
            pass  # pragma: no cover


async def test_tracing_is_a_bool(autojump_clock: Clock) -> None:
    with pytest.raises(TypeError, match="tracing must be True or False"):
        async with open_fake_pool(Telemetry, size=1, tracing="yes"):  # type: ignore[arg-type]
            pass  # pragma: no cover
