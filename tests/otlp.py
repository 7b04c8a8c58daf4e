"""A loopback OTLP/HTTP trace receiver, for tests whose worker processes export spans.

Workers configured with ``OTEL_TRACES_EXPORTER=otlp`` and
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=<receiver.endpoint>`` POST ``ExportTraceServiceRequest``
messages (protobuf) here; each span lands in ``receiver.spans``. HTTP/1.1 with keep-alive,
bounded: requests over 16 MiB or headers over 64 KiB close the connection.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

MAX_BODY = 16 << 20
MAX_HEAD = 64 << 10


@attrs.frozen
class Span:
    name: str
    kind: int  # opentelemetry.proto's SpanKind: 2 server, 3 client, 1 internal
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root
    attributes: dict[str, object]


@attrs.define
class Receiver:
    endpoint: str = ""
    spans: list[Span] = attrs.Factory(list)
    received: trio.Event = attrs.Factory(trio.Event)  # set (and renewed) on each export

    async def wait_for(self, count: int) -> None:
        while len(self.spans) < count:
            await self.received.wait()

    async def serve(self, stream: trio.SocketStream) -> None:
        buffer = b""
        async with stream:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = await stream.receive_some(65536)
                    if not data or len(buffer) > MAX_HEAD:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    key, _, value = line.partition(b":")
                    if key.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length > MAX_BODY:
                    return
                while len(buffer) < length:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buffer += data
                body, buffer = buffer[:length], buffer[length:]
                self._export(body)
                await stream.send_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )

    def _export(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: _value(a.value) for a in span.attributes}
                    self.spans.append(
                        Span(
                            span.name,
                            span.kind,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            attributes,
                        )
                    )
        self.received.set()
        self.received = trio.Event()


def _value(value: object) -> object:
    field = value.WhichOneof("value")  # type: ignore[attr-defined]
    return getattr(value, field) if field else None


@asynccontextmanager
async def otlp_receiver() -> AsyncIterator[Receiver]:
    """A receiver on 127.0.0.1 for the block."""
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, receiver.serve, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        receiver.endpoint = f"http://127.0.0.1:{port}/v1/traces"
        yield receiver
        nursery.cancel_scope.cancel()
