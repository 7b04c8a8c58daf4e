"""End-to-end (real workers, both transports): OpenTelemetry traces from host to worker.

The host's spans go to an in-memory exporter; the workers export theirs with OTLP/HTTP to a
receiver on the loopback (``tests/otlp.py``), configured by the standard OTEL_* variables,
and flush them when the pool stops them. One trace runs host CLIENT -> worker SERVER ->
worker span, and on through a span opened from the worker's context (as host tools do) to
a nested call's CLIENT and SERVER spans.
"""

from __future__ import annotations

import pytest
import trio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind

import snakepit_trio as sp
from snakepit_trio.contrib.otel import instrument
from tests.otlp import Span, otlp_receiver

TELEMETRY = "tests.adapters.telemetry:Telemetry"
BRIDGE = "tests.adapters.bridge:Bridge"
SERVER, INTERNAL = 2, 1  # opentelemetry.proto's span kinds


def host_tracing(sampler: object = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider() if sampler is None else TracerProvider(sampler=sampler)  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def span_id(meta: dict[str, str]) -> str:
    return meta["traceparent"].split("-")[2]


async def test_one_trace_runs_from_the_host_through_the_worker_and_back() -> None:
    provider, exporter = host_tracing()
    tracer = provider.get_tracer("test")
    with trio.fail_after(60):
        async with otlp_receiver() as receiver:
            env = {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
                "OTEL_SERVICE_NAME": "worker-under-test",
            }
            async with sp.open_pool(TELEMETRY, size=1, env=env) as pool:
                instrument(pool, tracer_provider=provider, metrics=False)
                hub = pool._engine.telemetry
                with tracer.start_as_current_span("request"):
                    metas = await pool.execute("meta")
                    # What host-tool code does with a worker's context: a span under it,
                    # current while the nested call runs.
                    with hub.span_from_meta("host_tool.lookup", metas["outer"]):
                        nested = await pool.execute("ameta")
                    with pytest.raises(sp.RemoteError):
                        await pool.execute("spanned", {"fail": True})
                    async with pool.stream("acount", {"n": 2}) as chunks:
                        assert [c async for c in chunks] == [0, 1]
            # Stopped: the worker flushed what it held. (meta, inner, ameta, spanned, prep,
            # acount and its two chunk spans.)
            await receiver.wait_for(8)
    host = {s.name: s for s in exporter.get_finished_spans()}
    worker: dict[str, list[Span]] = {}
    for s in receiver.spans:
        worker.setdefault(s.name, []).append(s)
    root = host["request"]
    trace_id = f"{root.context.trace_id:032x}"
    assert {s.trace_id for s in receiver.spans} == {trace_id}
    # host CLIENT -> worker SERVER -> worker span
    client = host["meta"]
    assert client.kind is SpanKind.CLIENT and client.parent.span_id == root.context.span_id
    assert client.attributes["rpc.system.name"] == "snakepit_trio"
    assert client.attributes["rpc.response.status_code"] == "OK"
    [server] = worker["meta"]
    assert server.kind == SERVER and server.parent_span_id == f"{client.context.span_id:016x}"
    assert server.attributes["rpc.method"] == "meta"
    [inner] = worker["inner"]
    assert inner.kind == INTERNAL and inner.parent_span_id == server.span_id
    # The tool's trace context as a meta map: its innermost open span's.
    assert span_id(metas["outer"]) == server.span_id
    assert span_id(metas["inner"]) == inner.span_id
    # worker SERVER -> host span from its meta -> nested CLIENT -> nested worker SERVER
    lookup = host["host_tool.lookup"]
    assert lookup.kind is SpanKind.INTERNAL and f"{lookup.parent.span_id:016x}" == server.span_id
    nested_client = host["ameta"]
    assert nested_client.parent.span_id == lookup.context.span_id
    [nested_server] = worker["ameta"]
    assert nested_server.parent_span_id == f"{nested_client.context.span_id:016x}"
    assert span_id(nested) == nested_server.span_id
    # A tool that raised: both sides say so; its span's error too.
    assert host["spanned"].attributes["rpc.response.status_code"] == "REMOTE"
    assert host["spanned"].attributes["error.type"] == "RemoteError"
    [failed] = worker["spanned"]
    assert failed.attributes["rpc.response.status_code"] == "ERROR"
    assert failed.attributes["error.type"] == "ValueError"
    [prep] = worker["prep"]
    assert prep.parent_span_id == failed.span_id and prep.attributes["stage"] == "tokenize"
    # A stream: its chunks' spans are children of its SERVER span.
    [stream] = worker["acount"]
    assert [c.parent_span_id for c in worker["chunk"]] == [stream.span_id] * 2
    assert host["acount"].attributes["snakepit.stream"] is True


async def test_a_call_not_sampled_costs_the_worker_no_opentelemetry() -> None:
    unsampled, exporter = host_tracing(ALWAYS_OFF)
    sampled, _ = host_tracing()
    with trio.fail_after(60):
        async with sp.open_pool(TELEMETRY, size=1) as pool:
            assert await pool.execute("modules") == []
            with instrument(pool, tracer_provider=unsampled, metrics=False):
                assert await pool.execute("ameta") is None  # no context was sent
                assert await pool.execute("modules") == []
            assert exporter.get_finished_spans() == ()
            with instrument(pool, tracer_provider=sampled, metrics=False):
                meta = await pool.execute("ameta")
                assert meta is not None and int(meta["traceparent"][-2:], 16) & 1  # sampled
                assert "opentelemetry.trace" in await pool.execute("modules")


async def test_a_host_tool_and_its_nested_call_are_in_the_calls_trace() -> None:
    """host CLIENT -> worker SERVER -> host tool (INTERNAL, on the host) -> nested CLIENT ->
    nested worker SERVER: three hops, one trace, every parent link as it happened."""
    provider, exporter = host_tracing()
    tracer = provider.get_tracer("test")
    with trio.fail_after(60):
        async with otlp_receiver() as receiver:
            env = {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
                "OTEL_SERVICE_NAME": "worker-under-test",
            }
            async with sp.open_pool(BRIDGE, size=1, env=env) as pool:
                instrument(pool, tracer_provider=provider, metrics=False)

                @pool.host_tool
                async def nest(ctx: sp.HostToolContext) -> int:
                    return await ctx.pool.execute("pid")  # type: ignore[no-any-return]

                with tracer.start_as_current_span("request"):
                    got = await pool.execute("acall", {"name": "nest", "args": None})
                assert got == {"value": pool.workers()[0].pid}
            await receiver.wait_for(2)  # the worker's acall and pid SERVER spans
    host = {s.name: s for s in exporter.get_finished_spans()}
    worker = {s.name: s for s in receiver.spans}
    root = host["request"]
    assert {s.trace_id for s in receiver.spans} == {f"{root.context.trace_id:032x}"}
    client = host["acall"]
    assert client.kind is SpanKind.CLIENT and client.parent.span_id == root.context.span_id
    server = worker["acall"]
    assert server.kind == SERVER and server.parent_span_id == f"{client.context.span_id:016x}"
    tool = host["host_tool nest"]
    assert tool.kind is SpanKind.INTERNAL and f"{tool.parent.span_id:016x}" == server.span_id
    nested_client = host["pid"]
    assert nested_client.kind is SpanKind.CLIENT
    assert nested_client.parent.span_id == tool.context.span_id
    nested_server = worker["pid"]
    assert nested_server.parent_span_id == f"{nested_client.context.span_id:016x}"
