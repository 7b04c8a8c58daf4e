"""OpenTelemetry in a worker: a SERVER span per traced call, and ``ctx.span`` as its children.

Imported only when a CALL's meta carries a sampled W3C trace context (``_events.sampled``),
so a worker that is never traced never imports OpenTelemetry (its import costs start-up).

Rules:
- The SERVER span is a child of the host's CLIENT span (the context in the CALL's meta, read
  with the global propagator: W3C unless ``OTEL_PROPAGATORS`` says otherwise). It is named
  after the tool, with ``rpc.system.name`` "snakepit_trio", ``rpc.method`` and
  ``rpc.response.status_code`` ("OK", "ERROR" or "CANCELLED"); a tool that raised marks it
  as an error, with the exception recorded.
- Spans are exported by the tracer provider the adapter sets up (in ``initialize``). When
  it sets none and ``OTEL_TRACES_EXPORTER`` names exporters ("otlp", "console", or any
  registered one), the worker makes one from the standard ``OTEL_*`` variables (it
  inherits the host's environment, plus ``env=``), and flushes it when it stops (within
  2 s; a worker that crashes loses what it had not exported).
- Sync and async tools run with the SERVER span current, so OpenTelemetry instrumentation
  in the tool nests under it; generators do not (their steps may run in other threads),
  but ``ctx.span`` parents its spans explicitly either way.
- Without OpenTelemetry importable here, nothing is recorded, and the incoming context is
  passed on unchanged (``meta``), so host tools still join the caller's trace.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from typing import Any

import attrs

log = logging.getLogger("snakepit_trio.worker")

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - the otel extra is installed in the tests
    trace = None  # type: ignore[assignment]

_lock = threading.Lock()


class _State:
    tracer: Any = None
    installed: Any = None  # the provider made here from OTEL_* variables, if any


_state = _State()

PASSED_ON = ("traceparent", "tracestate")


def _get_tracer() -> Any:
    with _lock:
        if _state.tracer is None:
            _install_provider()
            _state.tracer = trace.get_tracer("snakepit_trio.worker")
        return _state.tracer


def _install_provider() -> None:
    """Make a provider from OTEL_* variables when the adapter set none (see the module doc)."""
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return  # the adapter (or its module) set one up
    wanted = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    wanted = [n for n in wanted if n != "none"]
    if not wanted or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_TRACES_EXPORTER=%s but opentelemetry-sdk is not installed in the worker; "
            "its spans are not exported",
            ",".join(wanted),
        )
        return
    attributes = (
        {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "snakepit_trio.worker"}
    )
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in wanted:
        exporter = _exporter(name)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _state.installed = provider


def _exporter(name: str) -> Any:
    from importlib.metadata import entry_points

    if name == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        name = "otlp_proto_grpc" if protocol == "grpc" else "otlp_proto_http"
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    for entry in found:
        try:
            return entry.load()()
        except Exception:
            log.exception("cannot make the %r span exporter; its spans are not exported", name)
            return None
    log.warning("no span exporter named %r is installed in the worker (OTEL_TRACES_EXPORTER)", name)
    return None


def flush(timeout: float = 2.0) -> None:
    """Export what the provider made here still holds (the worker is stopping)."""
    if _state.installed is not None:
        try:
            _state.installed.force_flush(int(timeout * 1000))
        except Exception:
            log.exception("flushing the worker's spans failed")


class _Child:
    """A ``ctx.span`` block's OpenTelemetry span, current for the block."""

    def __init__(self, trace_: CallTrace, span: Any) -> None:
        self._trace = trace_
        self._span = span
        self._token = otel_context.attach(trace.set_span_in_context(span))

    def end(self, error: BaseException | None) -> None:
        try:
            otel_context.detach(self._token)
        except Exception:  # left in another context (a generator's step): nothing to undo
            pass
        if error is not None:
            _failed(self._span, error)
        self._span.end()
        self._trace.popped(self._span)


def _failed(span: Any, error: BaseException) -> None:
    if isinstance(error, Exception):
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200]))
        span.set_attribute("error.type", type(error).__qualname__)


class CallTrace:
    """One traced call's spans (or, without OpenTelemetry, its incoming context)."""

    def __init__(self, span: Any, incoming: dict[str, str]) -> None:
        self.span = span  # the SERVER span, or None without OpenTelemetry
        self._incoming = incoming
        self._open: list[Any] = []  # ctx.span spans still open, innermost last

    @classmethod
    def start(
        cls, tool: str, call_id: int, session_id: str | None, meta: dict[str, Any]
    ) -> CallTrace:
        incoming = {k: v for k in PASSED_ON if type(v := meta.get(k)) is str}
        if trace is None:
            return cls(None, incoming)
        parent = propagate.extract(incoming)
        attributes: dict[str, Any] = {
            "rpc.system.name": "snakepit_trio",
            "rpc.method": tool,
            "snakepit.call_id": call_id,
        }
        if session_id is not None:
            attributes["snakepit.session_id"] = session_id
        span = _get_tracer().start_span(
            tool, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        return cls(span, incoming)

    def end(self, error: BaseException | None) -> None:
        span = self.span
        if error is None:
            span.set_attribute("rpc.response.status_code", "OK")
        elif isinstance(error, Exception):
            span.set_attribute("rpc.response.status_code", "ERROR")
            _failed(span, error)
        else:  # cancelled, or a generator closed early: not the tool's failure
            span.set_attribute("rpc.response.status_code", "CANCELLED")
        span.end()

    def child(self, name: str, attributes: dict[str, Any]) -> _Child | None:
        if self.span is None:
            return None
        parent = self._open[-1] if self._open else self.span
        span = _get_tracer().start_span(
            name, context=trace.set_span_in_context(parent), attributes=attributes
        )
        self._open.append(span)
        return _Child(self, span)

    def popped(self, span: Any) -> None:
        if span in self._open:
            self._open.remove(span)

    def meta(self) -> dict[str, str]:
        """The trace context of the innermost open span, as a meta map (for HOST_CALL)."""
        if self.span is None:
            return dict(self._incoming)
        carrier: dict[str, str] = {}
        current = self._open[-1] if self._open else self.span
        propagate.inject(carrier, context=trace.set_span_in_context(current))
        return carrier

    def wrap(self, info: Any) -> Any:
        """``info`` with its function run inside the SERVER span."""
        if self.span is None:
            return info
        fn = info.fn
        if info.streaming:
            wrapped = self._async_gen(fn) if info.is_async else self._sync_gen(fn)
        elif info.is_async:
            wrapped = self._async(fn)
        else:
            wrapped = self._sync(fn)
        return attrs.evolve(info, fn=wrapped)

    def _sync(self, fn: Any) -> Any:
        @functools.wraps(fn)
        def traced(**kwargs: Any) -> Any:
            token = otel_context.attach(trace.set_span_in_context(self.span))
            error: BaseException | None = None
            try:
                return fn(**kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                otel_context.detach(token)
                self.end(error)

        return traced

    def _async(self, fn: Any) -> Any:
        @functools.wraps(fn)
        async def traced(**kwargs: Any) -> Any:
            token = otel_context.attach(trace.set_span_in_context(self.span))
            error: BaseException | None = None
            try:
                return await fn(**kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                otel_context.detach(token)
                self.end(error)

        return traced

    def _sync_gen(self, fn: Any) -> Any:
        def traced(**kwargs: Any) -> Any:
            error: BaseException | None = None
            try:
                yield from fn(**kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self.end(error)

        return traced

    def _async_gen(self, fn: Any) -> Any:
        async def traced(**kwargs: Any) -> Any:
            gen = fn(**kwargs)
            error: BaseException | None = None
            try:
                async for item in gen:
                    yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                try:
                    await gen.aclose()
                finally:
                    self.end(error)

        assert inspect.isasyncgenfunction(traced)
        return traced
