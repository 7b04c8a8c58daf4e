"""Telemetry from a worker: ``ctx.emit``, ``ctx.span`` and ``emit`` / ``span`` outside calls.

Each event leaves as an EVENT frame (``[20, call_id, name, measurements, metadata, time]``)
in the next batch, and reaches the host's handlers as ``adapter.<name>``. Rules:
- What a tool passes is checked where it is passed (``TypeError`` / ``ValueError`` naming
  the key), so an event that could not be encoded never reaches a batch.
- Safe from any thread: a frame made in a tool thread crosses to the event loop with the
  frames made beside it (one ``call_soon_threadsafe`` per batch, issued only when the
  pending list was empty), as the tool threads' results do.
- Sent only to a host that named "events" in its HELLO; to any other, events are checked
  and dropped. Events emitted outside calls before such a host connects (in
  ``initialize``) wait for it, at most ``MAX_PENDING`` of them (the rest are dropped, and
  the first connection logs how many).
- A span sends ``<name>.stop`` with its ``duration`` (and ``<name>.exception`` first when
  its block raised); inside a traced call it is also an OpenTelemetry span (``_tracing.py``).
- ``time`` is seconds on this process's monotonic clock since it started serving; the host
  maps it onto its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from .._core import _checks as checks
from .._core._event_names import MAX_NAME, check_name
from .._core._types import numpy_kind
from .._shared import _frames as w

log = logging.getLogger("snakepit_trio.worker")

Frame = list[Any]
Sink = Callable[[Frame], None]

MAX_PENDING = 1000  # events kept for a host that has not connected yet
MAX_KEYS = 64  # measurements or metadata entries in one event
MAX_TEXT = 4096  # characters of a metadata string that are sent
_INT_RANGE = (-(1 << 63), (1 << 64) - 1)  # what msgpack packs as an integer

_started = [time.monotonic()]
# A forked worker's clock starts with it.
os.register_at_fork(after_in_child=lambda: _started.__setitem__(0, time.monotonic()))


def now() -> float:
    """The EVENT frame's time: seconds since this worker process started."""
    return time.monotonic() - _started[0]


# --- checking what a tool passes ---------------------------------------------------------------
def _measurement(key: str, value: Any) -> float:
    if type(value) is float or (isinstance(value, float) and not isinstance(value, bool)):
        if math.isnan(value):
            raise ValueError(f"measurements[{key!r}] must be a number, not NaN")
        return float(value)
    if isinstance(value, int) and not isinstance(value, bool):
        number: float = int(value)
        lo, hi = _INT_RANGE
        return number if lo <= number <= hi else float(number)
    kind = numpy_kind(value)
    if kind in ("i", "u"):
        return _measurement(key, int(value))
    if kind == "f":
        return _measurement(key, float(value))
    raise TypeError(
        f"measurements[{key!r}] must be a number (seconds, bytes, a count); "
        f"got {checks.shown(value)} ({checks.a_type(value)})"
    )


def _scalar(where: str, key: str, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, int | float):
        return _measurement(key, value) if not isinstance(value, float) else float(value)
    kind = numpy_kind(value)
    if kind:
        return _scalar(where, key, value.item())
    raise TypeError(
        f"{where}[{key!r}] must be a str, a number, a bool or None; got {checks.shown(value)} "
        f"({checks.a_type(value)}); pass str(value), or a number"
    )


def _entries(where: str, value: Any) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{where} must be a dict or None; got {checks.shown(value)} ({checks.a_type(value)})"
        )
    if len(value) > MAX_KEYS:
        raise ValueError(f"{where} may hold at most {MAX_KEYS} entries; got {len(value)}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(
                f"{where} keys must be str; got {checks.shown(key)} ({checks.a_type(key)})"
            )
    return value


def check_measurements(value: Any) -> dict[str, float]:
    """Numbers by name (numpy numbers count); bool and NaN are refused."""
    return {str(k): _measurement(k, v) for k, v in _entries("measurements", value).items()}


def check_metadata(value: Any, where: str = "metadata") -> dict[str, Any]:
    """str, number, bool or None by name (longer strings are cut to MAX_TEXT characters)."""
    return {str(k): _scalar(where, k, v) for k, v in _entries(where, value).items()}


def check_span_name(name: Any) -> str:
    check_name("span name", name)
    if len(name) > MAX_NAME - len(".exception"):
        raise ValueError(
            f"span name must be at most {MAX_NAME - len('.exception')} characters; got {len(name)}"
        )
    return str(name)


# --- getting frames to the loop ------------------------------------------------------------------
class Crossing:
    """Frames for the loop's sinks, from any thread: direct on the loop, batched otherwise."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()  # made on the loop (Runtime's constructor)
        self._lock = threading.Lock()
        self._pending: list[tuple[Sink, Frame]] = []

    def send(self, sink: Sink, frame: Frame) -> None:
        if threading.get_ident() == self._loop_thread:
            sink(frame)
            return
        with self._lock:
            self._pending.append((sink, frame))
            first = len(self._pending) == 1
        if first:
            try:
                self._loop.call_soon_threadsafe(self._flush)
            except RuntimeError:  # the loop is closed: the worker is exiting
                pass

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for sink, frame in pending:
            sink(frame)


_crossings: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Crossing] = (
    weakref.WeakKeyDictionary()
)


def crossing(loop: asyncio.AbstractEventLoop) -> Crossing:
    """The loop's crossing (made on first use, which must be on the loop's thread)."""
    found = _crossings.get(loop)
    if found is None:
        found = _crossings[loop] = Crossing(loop)
    return found


class Route:
    """A connection's way for events (one per connection to a host that takes them): its
    sink, reached from any thread. A call's ToolContext holds its connection's route."""

    __slots__ = ("crossing", "sink")

    def __init__(self, sink: Sink, loop: asyncio.AbstractEventLoop) -> None:
        self.sink = sink
        self.crossing = crossing(loop)

    def send(self, frame: Frame) -> None:
        self.crossing.send(self.sink, frame)


class Outlet:
    """Where events that belong to no call go: the route of a host that takes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._route: Route | None = None
        self._pending: list[Frame] = []
        self.dropped = 0

    def bind(self, route: Route) -> None:
        """A host that takes events connected (on the loop): what waited goes to it first."""
        with self._lock:
            self._route = route
            pending, self._pending = self._pending, []
            dropped, self.dropped = self.dropped, 0
        for frame in pending:
            route.sink(frame)
        if dropped:
            log.warning(
                "%d telemetry events emitted before the host connected were dropped "
                "(at most %d wait)",
                dropped,
                MAX_PENDING,
            )

    def unbind(self, route: Route | None) -> None:
        with self._lock:
            if route is not None and self._route is route:
                self._route = None

    def send(self, frame: Frame) -> None:
        with self._lock:
            route = self._route
            if route is None:
                if len(self._pending) < MAX_PENDING:
                    self._pending.append(frame)
                else:
                    self.dropped += 1
                return
        route.send(frame)


_PROCESS = Outlet()
# The outlet of the worker running here: the process's, except in snakepit_trio.testing,
# where several workers share one process and each sets its own while it starts.
_outlet: contextvars.ContextVar[Outlet] = contextvars.ContextVar("snakepit_outlet")


def current_outlet() -> Outlet:
    return _outlet.get(_PROCESS)


def use_outlet(outlet: Outlet) -> None:
    """Make ``outlet`` this context's (a worker in memory, while it starts)."""
    _outlet.set(outlet)


# --- a call's events -------------------------------------------------------------------------
# What ctx.emit and ctx.span read of a ToolContext: ``request_id``, ``_route`` (its
# connection's, None if its host takes no events) and ``_trace`` (None unless traced). A
# call that emits nothing costs one attribute set as it starts.
def emit_event(ctx: Any, name: Any, measurements: Any, metadata: Any) -> None:
    """``ctx.emit`` (``ctx``: the call's ToolContext) or ``emit`` (None: outside calls)."""
    check_name("event name", name)
    values = check_measurements(measurements)
    details = check_metadata(metadata)
    _send(ctx, name, values, details)


def _send(ctx: Any, name: str, measurements: dict[str, float], metadata: dict[str, Any]) -> None:
    if ctx is None:
        current_outlet().send(w.event(None, name, measurements, metadata, now()))
    elif ctx._route is not None:
        ctx._route.send(w.event(ctx.request_id, name, measurements, metadata, now()))


class Span:
    """``with ctx.span(name, **attributes):`` — see ``ToolContext.span``."""

    __slots__ = ("_attributes", "_ctx", "_name", "_otel", "_started")

    def __init__(self, ctx: Any, name: Any, attributes: dict[str, Any]) -> None:
        self._name = check_span_name(name)
        self._attributes = check_metadata(attributes, "span attributes")
        self._ctx = ctx
        self._otel: Any = None
        self._started = 0.0

    def __enter__(self) -> None:
        trace = None if self._ctx is None else self._ctx._trace
        if trace is not None:
            self._otel = trace.child(self._name, self._attributes)
        self._started = time.perf_counter()

    def __exit__(
        self,
        type_: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        duration = time.perf_counter() - self._started
        if self._otel is not None:
            self._otel.end(error)
        measurements = {"duration": duration}
        if error is not None:
            details = {**self._attributes, "error_type": type(error).__name__}
            _send(self._ctx, f"{self._name}.exception", measurements, details)
        _send(self._ctx, f"{self._name}.stop", measurements, dict(self._attributes))


def trace_call(ctx: Any, call_id: int, meta: dict[str, Any], info: Any) -> Any:
    """A call whose CALL frame carries ``meta``: when it holds a sampled trace context, the
    call is traced (``ctx._trace``) and the ToolInfo to run is a traced copy."""
    if not sampled(meta):
        return info
    from ._tracing import CallTrace

    ctx._trace = CallTrace.start(info.name, call_id, ctx.session_id, meta)
    return ctx._trace.wrap(info)


def trace_meta(ctx: Any) -> dict[str, str] | None:
    """The trace context of a running call, as a meta map for the frames it sends the host
    (a host call's): its innermost open span's, or None when the call is not traced."""
    trace = ctx._trace
    if trace is None:
        return None
    meta: dict[str, str] = trace.meta()
    return meta or None


def flush_traces() -> None:
    """The worker is stopping: export the spans it still holds (if it ever traced)."""
    tracing = sys.modules.get(__name__.rpartition(".")[0] + "._tracing")
    if tracing is not None:
        tracing.flush()


def sampled(meta: Mapping[str, Any]) -> bool:
    """Whether a CALL's meta carries a W3C trace context whose sampled flag is set."""
    parent = meta.get("traceparent")
    if type(parent) is not str or len(parent) != 55:
        return False
    try:
        return bool(int(parent[53:55], 16) & 1)
    except ValueError:
        return False


# --- the public functions, for code outside calls --------------------------------------------
def emit(
    name: str,
    measurements: dict[str, float] | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Send a telemetry event that belongs to no call (from ``initialize``, a background
    thread, module code); safe from any thread, never blocks.

    The host's handlers get it as ``adapter.<name>`` with ``call_id`` None. Events sent
    before the host connects (in ``initialize``) wait for it, at most 1,000. Inside a tool,
    ``ctx.emit`` ties the event to its call.

    Args:
        name: dotted words of letters, digits, ``_`` or ``-`` (``"model.loaded"``).
        measurements: numbers by name (seconds, bytes, counts).
        metadata: str, number, bool or None values by name.

    Raises:
        TypeError: a value of the wrong type (the message names its key).
        ValueError: a malformed name, a NaN measurement, or more than 64 entries.
    """
    emit_event(None, name, measurements, metadata)


def span(name: str, **attributes: str | float | bool | None) -> AbstractContextManager[None]:
    """Time a block outside calls (``with span("load_weights"): ...``), as ``ctx.span``.

    Args:
        name: as for ``emit`` (at most 190 characters).
        **attributes: str, number, bool or None values, sent as the events' metadata.

    Returns:
        A context manager sending ``adapter.<name>.stop`` (and ``.exception`` first if the
        block raised) when the block ends.

    Raises:
        TypeError, ValueError: as for ``emit``.
    """
    return Span(None, name, attributes)
