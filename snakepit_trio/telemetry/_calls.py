"""The telemetry of one call or stream: ``call.*`` / ``stream.*`` events and its trace span.

The engine makes an ``Observed`` for a call only while its hub is on (``start``), keeps it on
the call's handle (``handle.observed``), tells it when the call is sent, and ends it once,
however the call ends (``end``). Every observed call gets exactly one ``*.stop``; one that
raised gets ``*.exception`` just before it. Calls that began while nothing was attached are
not observed at all, so start and stop always pair up.

Durations are on Trio's clock (virtual in ``snakepit_trio.testing`` under a MockClock).
"""

from __future__ import annotations

import time
from typing import Any

import trio

from .. import _errors as errors
from .._shared import _frames as w
from ._hub import Event, Hub

# What a call's outcome is called, by the exception it ended with (metric-friendly: few
# values). Looked up by exact type, then along the MRO.
OUTCOMES: dict[type[BaseException], str] = {
    errors.RemoteError: "remote",
    errors.RequestTimeout: "timeout",
    errors.QueueTimeout: "queue_timeout",
    errors.StreamIdleTimeout: "idle_timeout",
    errors.WorkerCrashed: "crashed",
    errors.PoolClosed: "closed",
    errors.SessionLost: "session_lost",
    errors.PoolUnhealthy: "unhealthy",
    errors.PoolSaturated: "saturated",
    errors.SerializationError: "serialization",
    errors.PayloadTooLarge: "payload_too_large",
    errors.UnknownTool: "unknown_tool",
    errors.InvalidArguments: "invalid_arguments",
    trio.Cancelled: "cancelled",
    KeyboardInterrupt: "cancelled",
}


def outcome_of(error: BaseException) -> str:
    """``"remote"``, ``"timeout"``, ...: the outcome a call ending with ``error`` has."""
    for klass in type(error).__mro__:
        found = OUTCOMES.get(klass)
        if found is not None:
            return found
    return "error"


def error_type(error: BaseException) -> str:
    """The name of an error's type, as call.exception's ``error_type`` says it."""
    return error.type_name if isinstance(error, _Unraised) else type(error).__name__


class Observed:
    """One call's telemetry while it runs (only made while the hub is on)."""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "call_id",
        "chunks",
        "finished",
        "hub",
        "meta",
        "run_time",
        "sent_at",
        "session_id",
        "span",
        "started_at",
        "stream",
        "tool",
        "worker",
    )

    def __init__(
        self,
        hub: Hub,
        call_id: int,
        tool: str,
        session_id: str | None,
        stream: bool,
        bytes_in: int,
    ) -> None:
        self.hub = hub
        self.call_id = call_id
        self.tool = tool
        self.session_id = session_id
        self.stream = stream
        self.bytes_in = bytes_in
        self.bytes_out = 0
        self.chunks = 0
        self.run_time: float | None = None
        self.started_at = hub.clock()
        self.sent_at: float | None = None  # first sent to a worker
        self.worker: str | None = None  # the last worker it was sent to
        self.finished = False  # a stream: its END (or ERROR) came before it was closed
        self.span: Any = None
        self.meta: dict[str, Any] | None = None  # for the CALL frame (trace context)

    # --- what the engine reports --------------------------------------------------------
    def sent(self, worker_id: str, now: float) -> None:
        """Sent to ``worker_id`` at ``now`` (Trio's clock)."""
        if self.sent_at is None:
            self.sent_at = now
        self.worker = worker_id

    def chunk(self, payload: bytes) -> None:
        self.chunks += 1
        self.bytes_out += len(payload)

    def result(self, payload: bytes, run_time: float | None) -> None:
        self.bytes_out = len(payload)
        self.run_time = run_time

    def end(self, error: BaseException | None, outcome: str | None = None) -> None:
        """The call is over: ``error`` is what it raised (None: it succeeded), ``outcome``
        overrides the one ``error`` implies (a stream left early is "abandoned")."""
        hub = self.hub
        duration = hub.clock() - self.started_at
        if outcome is None:
            outcome = "ok" if error is None else outcome_of(error)
        metadata: dict[str, Any] = {
            "pool": hub.pool,
            "call_id": self.call_id,
            "tool": self.tool,
            "session_id": self.session_id,
            "worker_id": self.worker,
            "outcome": outcome,
        }
        names = _STREAM if self.stream else _CALL
        if error is not None:
            routes = hub.routes(names[2])
            if routes:
                details = {
                    **metadata,
                    "error_type": error_type(error),
                    "started": self.sent_at is not None,
                }
                hub.deliver(routes, Event(names[2], {"duration": duration}, details, time.time()))
        routes = hub.routes(names[1])
        if routes:
            measurements: dict[str, float] = {"duration": duration, "bytes_in": self.bytes_in}
            if self.sent_at is not None:
                measurements["queue_wait"] = self.sent_at - self.started_at
                measurements["bytes_out"] = self.bytes_out
            if self.stream:
                measurements["chunks"] = self.chunks
            elif self.run_time is not None:
                measurements["run_time"] = self.run_time
            hub.deliver(routes, Event(names[1], measurements, metadata, time.time()))
        if self.span is not None and hub.tracer is not None:
            hub.tracer.end(self.span, self, outcome, error)


# Each kind's event names: start, stop, exception.
_CALL = ("call.start", "call.stop", "call.exception")
_STREAM = ("stream.start", "stream.stop", "stream.exception")


def start(
    hub: Hub,
    call_id: int,
    tool: str,
    session_id: str | None,
    *,
    stream: bool,
    bytes_in: int,
    queue_depth: int,
) -> Observed:
    """A call is submitted while the hub is on: its ``*.start`` event, and its span."""
    observed = Observed(hub, call_id, tool, session_id, stream, bytes_in)
    name = _STREAM[0] if stream else _CALL[0]
    routes = hub.routes(name)
    if routes:
        metadata = {"pool": hub.pool, "call_id": call_id, "tool": tool, "session_id": session_id}
        hub.deliver(routes, Event(name, {"queue_depth": queue_depth}, metadata, time.time()))
    tracer = hub.tracer
    if tracer is not None:
        observed.span = tracer.start(tool, call_id, session_id, stream)
        observed.meta = tracer.meta(observed.span)
    return observed


# A stream's ERROR frame, by kind: the outcome, and the error its consumer got.
_FRAME_ERRORS: dict[str, tuple[str, type[BaseException]]] = {
    "remote": ("remote", errors.RemoteError),
    "serialization": ("serialization", errors.SerializationError),
    "payload_too_large": ("payload_too_large", errors.PayloadTooLarge),
    "unknown_tool": ("unknown_tool", errors.UnknownTool),
    "invalid_arguments": ("invalid_arguments", errors.InvalidArguments),
}


def stream_ended(observed: Observed, handle: Any, left_with: BaseException | None) -> None:
    """A stream's block is over (``left_with``: what left it, None if nothing raised).

    Its outcome is the stream's own: the error the pool gave it (timeout, crash, ...), or
    its worker's ERROR, or "ok" once its END came. A block left before the end is
    "abandoned" ("cancelled" when the caller was cancelled); an exception of the caller's
    own code is not the stream's.
    """
    final = handle.final
    if handle.error is not None:
        observed.end(handle.error)
    elif observed.finished and type(final) is w.Error:
        outcome, error_type = _FRAME_ERRORS.get(final.kind, ("remote", errors.RemoteError))
        if isinstance(left_with, error_type):
            observed.end(left_with, outcome)
        else:
            observed.end(_Unraised(error_type.__name__), outcome)
    elif observed.finished:
        observed.end(None)
    elif isinstance(left_with, trio.Cancelled | KeyboardInterrupt):
        observed.end(left_with)
    else:
        observed.end(None, "abandoned")


class _Unraised(Exception):
    """Stands for a stream's error that its consumer never saw raised (it left first)."""

    def __init__(self, type_name: str) -> None:
        super().__init__(type_name)
        self.type_name = type_name
