"""Frames from a worker, checked as a whole batch before any of it is acted on.

A worker that breaks the protocol is replaced (the engine kills it with cause "protocol");
this module only decides whether a batch is acceptable. Rules, besides each frame's own
shape (``_shared/_frames.py``):
- WELCOME belongs to the handshake; after it, it is a violation.
- A call's frames (RESULT, CHUNK, CHUNKS, END, ERROR, PROGRESS) must name a call this worker is
  running: the dispatcher holds a call on its worker until that worker's final frame, so
  a frame for any other id, or after the call's final frame, is out of order.
- ERROR "cancelled" with ``{"started": False}`` (the call was given back unstarted) only
  for a call the host revoked or cancelled.
- The call's handle decides what fits it: no chunks for unary calls, no RESULT for streams,
  no chunk beyond the credit the host granted (a CHUNKS counts each of its chunks, and
  holds at least one).
- EVENT: a name of dotted words, numbers as measurements, str keys (``telemetry/
  _from_workers.py``). Its call_id is not checked: a tool may emit after its call ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import trio

from .._config import PoolConfig
from .._core._dispatcher import Action, Call, CallState, Dispatcher
from .._errors import PoolClosed
from .._shared import _frames as w
from .._supervision._worker import Worker
from ..telemetry import _from_workers as worker_events
from ..telemetry._hub import Hub
from . import _batches as batches
from ._counters import Counters
from ._health import Health
from ._host_calls import HostCalls
from ._payloads import Payloads
from ._recycling import Recycler
from ._watchdog import Watchdog

log = logging.getLogger("snakepit_trio")

_FINAL: frozenset[type[Any]] = frozenset({w.Result, w.End, w.Error})
_OF_A_CALL: frozenset[type[Any]] = _FINAL | {w.Chunk, w.Chunks, w.Progress}


def not_started(frame: w.Error) -> bool:
    """Whether an ERROR says its call was given back before it began (see REVOKE)."""
    return (
        frame.kind == w.KIND_CANCELLED
        and frame.detail is not None
        and frame.detail.get("started") is False
    )


def check_batch(
    raw: object,
    worker_id: str,
    calls: dict[int, Call],
    stopping: bool = False,
    host_call_open: Callable[[int], bool] = lambda hcid: False,
) -> list[tuple[w.WorkerFrame, Call | None]]:
    """Parse ``raw`` (one decoded batch from ``worker_id``) and check it against the calls
    (and its HOST_CALLs against its host calls still open: ``host_call_open(id)``).

    Returns:
        Each frame with the call it belongs to (None for frames of no call).

    Raises:
        ProtocolViolation: a frame does not parse or does not fit; nothing may be applied.
    """
    if type(raw) is not list:
        raise w.ProtocolViolation(f"a batch must be an array of frames, got {type(raw).__name__}")
    parsers, of_a_call, get = w.FROM_WORKER, _OF_A_CALL, calls.get
    checked: list[tuple[w.WorkerFrame, Call | None]] = []
    append = checked.append
    finished: set[int] | None = None  # calls whose final frame came earlier in this batch
    opened: set[int] | None = None  # host call ids opened earlier in this batch
    for item in raw:  # one pass, names bound locally: this runs for every chunk of every stream
        parse = None
        if type(item) is list and item and type(item[0]) is int:
            parse = parsers.get(item[0])
        if parse is None:
            raise w.refused(item, from_worker=True)
        frame: w.WorkerFrame = parse(item)
        kind = type(frame)
        if kind not in of_a_call:
            if kind is w.Welcome:
                raise w.ProtocolViolation("WELCOME after the handshake")
            if kind is w.HostCall or kind is w.HostTools:
                # Host tools resolve against the calling call's session: it must be one
                # this worker is running, or a worker could reach another session's tools.
                asking: int = frame.call_id  # type: ignore[union-attr, assignment]
                call = get(asking)
                if call is None or call.worker != worker_id or (finished and asking in finished):
                    raise w.ProtocolViolation(
                        f"{kind.__name__.upper()} for call {asking}, which this worker is not "
                        "running"
                    )
                if kind is w.HostCall:
                    hcid: int = frame.id  # type: ignore[union-attr]
                    if host_call_open(hcid) or (opened is not None and hcid in opened):
                        raise w.ProtocolViolation(f"HOST_CALL reuses id {hcid}, still open")
                    if opened is None:
                        opened = set()
                    opened.add(hcid)
                append((frame, call))
                continue
            if kind is w.Event:
                problem = worker_events.problem(frame)  # type: ignore[arg-type]
                if problem is not None:
                    raise w.ProtocolViolation(problem)
            append((frame, None))
            continue
        call_id: int = frame.id  # type: ignore[union-attr]
        call = get(call_id)
        if call is None or call.worker != worker_id or (finished and call_id in finished):
            raise w.ProtocolViolation(
                f"{kind.__name__.upper()} for call {call_id}, which this worker is not running"
            )
        problem = call.handle.accepts(frame)
        if problem is not None:
            raise w.ProtocolViolation(problem)
        if (
            kind is w.Error
            and not_started(frame)  # type: ignore[arg-type]
            and not call.revoking
            and call.state is not CallState.ABANDONED
            and not stopping  # a worker told to stop withdraws what it has not begun
        ):
            raise w.ProtocolViolation(
                f"ERROR 'not started' for call {call_id}, which was neither revoked nor cancelled"
            )
        if kind in _FINAL:
            if finished is None:
                finished = set()
            finished.add(call_id)
        append((frame, call))
    return checked


class InboundHost(Protocol):
    """What applying a batch needs of the engine."""

    config: PoolConfig
    core: Dispatcher
    host_calls: HostCalls
    payloads: Payloads
    health: Health
    counters: Counters
    telemetry: Hub

    @property
    def recycler(self) -> Recycler: ...
    @property
    def watchdog(self) -> Watchdog: ...

    def apply(self, actions: list[Action]) -> None: ...
    def worker_quiet(self, worker: Worker, quiet: bool) -> None: ...
    def kill_worker(self, worker: Worker, reason: str, cause: str) -> None: ...
    def workers_changed(self) -> None: ...
    def check_settled(self) -> None: ...
    def note_pong(self, worker: Worker, seq: int) -> None: ...


class Inbound:
    """Applies checked batches: each frame kind has its handler."""

    def __init__(self, engine: InboundHost) -> None:
        self._engine = engine

    def on_frames(self, worker: Worker, raw: object) -> None:
        """A batch from ``worker``, in the Trio thread. Checked whole, then applied.

        A batch that breaks the protocol is not applied at all: the worker is killed and
        replaced, and every call on it ends with WorkerCrashed(cause="protocol").
        """
        if worker.gone.is_set() or worker.broken:
            return  # late: it has been replaced, or nothing it says counts any more
        try:
            frames = check_batch(
                raw,
                worker.id,
                self._engine.core.calls,
                worker.stop_requested,
                partial(self._engine.host_calls.is_open, worker.id),
            )
        except w.ProtocolViolation as exc:
            log.error("worker %s broke the frame protocol: %s; replacing it", worker.id, exc)
            self._engine.kill_worker(worker, f"it broke the frame protocol: {exc}", "protocol")
            return
        worker.last_heard = trio.current_time()
        if worker.quiet:
            self._engine.worker_quiet(worker, False)
        handlers = self._HANDLERS
        for frame, call in frames:
            handlers[type(frame)](self, worker, frame, call)
        slots = self._engine.core.workers.get(worker.id)
        if slots is not None and not slots.calls and not slots.accepting:
            self._engine.recycler.retire_if_done(worker)  # a recycled worker's last call
        self._engine.check_settled()

    def _on_pong(self, worker: Worker, frame: w.Pong, call: None) -> None:
        worker.last_rss = frame.rss
        self._engine.note_pong(worker, frame.seq)

    def _on_unmapped_args(self, worker: Worker, frame: w.UnmappedArgs, call: None) -> None:
        self._engine.payloads.returned(frame.names, worker.id)

    def _on_event(self, worker: Worker, frame: w.Event, call: None) -> None:
        telemetry = self._engine.telemetry
        if telemetry.on:
            of = None if frame.call_id is None else self._engine.core.calls.get(frame.call_id)
            if of is not None and of.worker != worker.id:
                of = None  # not its call (any more): the event names no tool
            worker_events.deliver(telemetry, worker.id, frame, of)

    def _on_chunk(self, worker: Worker, frame: w.Chunk, call: Call) -> None:
        self._chunks(call, [frame.chunk])

    def _on_chunks(self, worker: Worker, frame: w.Chunks, call: Call) -> None:
        self._chunks(call, frame.chunks)

    def _chunks(self, call: Call, payloads: list[bytes]) -> None:
        if call.state is CallState.SENT:
            call.handle.chunks(payloads)
        else:
            for payload in payloads:  # the consumer left: never decoded
                self._engine.payloads.drop(payload)

    def _on_progress(self, worker: Worker, frame: w.Progress, call: Call) -> None:
        call.handle.progress(frame)

    def _on_host_call(self, worker: Worker, frame: w.HostCall, call: Call) -> None:
        try:
            self._engine.host_calls.on_host_call(worker, frame, call)
        except Exception as exc:
            self._broken(worker, exc)

    def _on_host_tools(self, worker: Worker, frame: w.HostTools, call: Call) -> None:
        try:
            self._engine.host_calls.on_host_tools(worker, frame, call)
        except Exception as exc:
            self._broken(worker, exc)

    def _broken(self, worker: Worker, exc: Exception) -> None:
        """An unexpected error while serving a worker's request: the pool's own failure,
        never swallowed. The worker is replaced (its calls fail as crashed), so nothing
        waits for an answer that will not come; the pool serves on."""
        log.exception("serving a host call of worker %s failed; replacing it", worker.id)
        self._engine.kill_worker(worker, f"the host failed serving it: {exc!r}", "host")

    def _on_host_cancel(self, worker: Worker, frame: w.HostCancel, call: None) -> None:
        self._engine.host_calls.on_host_cancel(worker, frame)

    def _on_final(self, worker: Worker, frame: w.Result | w.End | w.Error, call: Call) -> None:
        engine = self._engine
        engine.host_calls.call_ended(call.id)
        abandoned = call.state is CallState.ABANDONED
        if type(frame) is w.Error and not_started(frame) and not worker.stop_requested:
            # Revoked or cancelled before it began: it never ran there (and, for the crash
            # breaker, a probe given back has not answered yet).
            engine.apply(engine.core.revoked(frame.id, worker.id))
            engine.watchdog.given_back()
            if abandoned:
                engine.workers_changed()
            elif call.state is CallState.QUEUED:
                call.handle.requeued()
            return
        if worker.stop_requested and type(frame) is w.Error and frame.kind == w.KIND_CANCELLED:
            # The worker cancels what it runs when it is told to stop: the pool wants no
            # more results then (closing, past its drain).
            engine.apply(engine.core.complete(frame.id, worker.id))
            if not abandoned:
                engine.counters.errors += 1
                call.handle.fail(
                    PoolClosed(f"pool {engine.config.name!r} closed before the call finished")
                )
            return
        run_time = frame.run_time if type(frame) is w.Result else None
        actions = engine.core.complete(frame.id, worker.id, run_time)
        engine.health.answered(call.id)
        if not abandoned:
            if type(frame) is w.Error:
                engine.counters.errors += 1
            call.handle.deliver(frame)
        else:
            if type(frame) is w.Result:
                for payload in batches.results_of(call.handle, frame):
                    engine.payloads.drop(payload)
            engine.workers_changed()  # a held worker may take sessions again
        engine.apply(actions)
        engine.recycler.after_call(worker)

    _HANDLERS: dict[type[Any], Callable[[Inbound, Worker, Any, Any], None]] = {
        w.Pong: _on_pong,
        w.UnmappedArgs: _on_unmapped_args,
        w.Event: _on_event,
        w.Chunk: _on_chunk,
        w.Chunks: _on_chunks,
        w.Progress: _on_progress,
        w.Result: _on_final,
        w.End: _on_final,
        w.Error: _on_final,
        w.HostCall: _on_host_call,
        w.HostTools: _on_host_tools,
        w.HostCancel: _on_host_cancel,
    }
