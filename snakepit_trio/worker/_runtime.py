"""Runs tool calls inside the worker: one RunningCall per call, frames out through a sink.

Rules:
- Every accepted CALL ends with exactly one RESULT, END or ERROR frame, whatever happens:
  building the final frame never raises (a value that cannot be encoded, for any reason,
  is a SerializationError; an exception that cannot be formatted is still reported; if
  even that fails, a constant ERROR frame is sent), so no call hangs and no slot is lost.
- Whatever a tool raises ends that call only, SystemExit and KeyboardInterrupt included
  (sync and async tools, generators of both kinds): it is reported as a RemoteError of
  that type and the worker serves on. What ``on_session_end`` raises is logged, and the
  worker serves on as well. A worker exits only when the host stops it (SIGTERM)
  or goes away (stdin EOF, parent death).
- A stream ends with END only when every chunk it yielded was sent; a chunk that cannot
  be encoded ends it with an ERROR.
- A call keeps its slot until its code has really stopped: a cancelled sync tool keeps
  running in its thread (it can only see ``ctx.cancelled``), and its final frame is sent
  when it returns, so the host never over-commits the worker.
- At most ``capacity`` calls run at once, sync, async and streaming alike (_slots.py); a
  borrowed call (nested in a host tool whose call waits here) runs beyond it.
- A CANCEL for a call still waiting for a slot is answered at once, and the call never
  starts (see _claim.py).
- A tool marked ``exclusive`` runs one call at a time (_exclusive.py).
- Async tools are cancelled with ``Task.cancel()``; generators are closed (their ``finally``
  runs) when cancelled or when the stream ends early.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
from msgpack import packb as _packb

from .._errors import PayloadTooLarge, SerializationError
from .._shared import _frames as w
from .._shared import _shm
from .._shared._codec import Outbound, decode, encode
from .._shared._segments import SegmentCache
from .._shared._tagging import POOL_TOKEN, WORKER_ID
from . import _batch as batch
from ._adapter import ToolInfo, check_arguments
from ._claim import QUEUED
from ._context import ToolContext
from ._events import Route, current_outlet, trace_call
from ._exclusive import Gate
from ._genpump import GeneratorPump
from ._host_calls import HostCalls
from ._inline import InlinePump, InlineTools
from ._outcomes import (
    describe,
    error_frame,
    not_started_frame,
    progress_values,
    unreportable_frame,
)
from ._slots import Slots
from ._threads import Done, ToolThreads

# Values that never hold a buffer (bytes are checked against the threshold).
_SCALARS: frozenset[type] = frozenset({int, float, str, bool, type(None)})
# Values msgpack packs in at most 9 bytes (an int out of its range raises OverflowError).
_TINY: frozenset[type] = frozenset({int, float, bool, type(None)})
_SMALL_BYTES = 1024  # bytes up to this long are packed directly (see Runtime.encode)

log = logging.getLogger("snakepit_trio.worker")

Frame = list[Any]
Sink = Callable[[Frame], None]
HOST = "host"  # the one receiver of a worker's segments


@attrs.frozen
class Memory:
    """Where a connection's large results and chunks go: segments of ``segments``, for
    buffers of ``threshold`` bytes or more. A worker its host started has one for all its
    connections (from its environment); over TCP, each connection whose host shares this
    machine has its own (``_shared/_samehost.py``)."""

    segments: SegmentCache
    threshold: int


class RunningCall:
    """One call in progress: its task, context and (for streams) credit."""

    __slots__ = (
        "_credit_event",
        "args",
        "borrowed",
        "cancel_requested",
        "credit",
        "ctx",
        "gate",
        "granted",
        "id",
        "info",
        "memory",
        "on_done",
        "pump",
        "runtime",
        "sink",
        "state",
        "task",
    )

    def __init__(
        self,
        call_id: int,
        info: ToolInfo,
        ctx: ToolContext,
        credit: int,
        sink: Sink,
        on_done: Callable[[int], None] | None,
        runtime: Runtime,
        args: dict[str, Any],
        borrowed: bool = False,
        memory: Memory | None = None,
    ) -> None:
        self.id = call_id
        self.memory = memory  # where its large results go (None: inline)
        self.info = info
        self.args = args  # its keyword arguments, until it has run (cleared then)
        self.borrowed = borrowed  # runs beyond capacity, holding no slot
        self.gate: Gate | None = None  # an exclusive sync tool's lock
        # An async call or stream that waits for a slot: its task waits on this, which is
        # True once it has one, False if a CANCEL withdrew it first.
        self.granted: asyncio.Future[bool] | None = None
        self.ctx = ctx
        self.credit = credit
        self.sink = sink
        self.on_done = on_done
        self.runtime = runtime
        self._credit_event: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None
        self.pump: GeneratorPump | InlinePump | None = None  # sync generators only
        self.cancel_requested = False
        self.state = QUEUED  # see _claim.py

    @property
    def credit_event(self) -> asyncio.Event:
        if self._credit_event is None:  # only streams need one
            self._credit_event = asyncio.Event()
        return self._credit_event

    def cancel(self) -> None:
        """The host cancelled it (on the loop): withdraw it if it has not started, else
        tell its code."""
        if self.cancel_requested:
            return
        self.cancel_requested = True
        if self.runtime.withdraw(self):
            return
        self.ctx._cancel()
        if self.gate is not None:
            self.gate.wake()  # it may wait for its tool's lock
        if self._credit_event is not None:
            self._credit_event.set()  # a stream waiting for credit notices the cancel
        if self.pump is not None:
            self.pump.cancel()
        # Sync code in a thread cannot be interrupted (it sees ctx.cancelled instead); async
        # code is cancelled at its next await. A task that got here holds its slot.
        if self.task is not None:
            self.task.cancel()

    def add_credit(self, n: int) -> None:
        self.credit += n
        if self._credit_event is not None:
            self._credit_event.set()
        if self.pump is not None:
            self.pump.add_credit(n)


class Runtime:
    """Owns the adapter's tools, the thread pool and the counters of one worker."""

    def __init__(
        self,
        tools: dict[str, ToolInfo],
        *,
        capacity: int,
        max_payload: int,
        shm_threshold: int = 0,
        on_session_end: Callable[[str], Awaitable[None]] | None = None,
        inline: bool = False,
        thread_safe: bool = False,
    ) -> None:
        """``inline``: run sync tools and sync generators as loop callbacks, not in threads
        (a worker in the host's thread, see _inline.py); its deadlines use the loop's clock.
        ``thread_safe``: the adapter's declaration, reported in the worker's description."""
        self.tools = tools
        self.inline = inline
        self._on_session_end = on_session_end
        self.capacity = capacity
        self.max_payload = max_payload
        # The longest bytes whose encoding (5 bytes of header at most) fits the limit: such
        # values, and tiny scalars, are packed with no check to make (most stream chunks).
        self._small = min(_SMALL_BYTES, max_payload - 9)
        token, worker_id = os.environ.get(POOL_TOKEN), os.environ.get(WORKER_ID)
        self.segments = (
            SegmentCache(_shm.prefix(token, worker_id))
            if shm_threshold and token and worker_id and _shm.available()
            else None
        )
        # The connections' default: a TCP connection replaces it with its own, or none.
        self.memory = None if self.segments is None else Memory(self.segments, shm_threshold)
        # Segments of the host's arguments no view of which is left here, and where to say
        # so (an RLock: a view may die, and this run, in the middle of a flush).
        self._unmapped: list[tuple[Sink, str]] = []
        self._unmapped_lock = threading.RLock()
        # Steps of sync generators run here.
        self.executor = ThreadPoolExecutor(max_workers=capacity, thread_name_prefix="snakepit-gen")
        # Held to claim a call for a slot or for its CANCEL, from any thread (see _claim.py).
        self._claims = threading.Lock()
        # The one limit on calls running at once, whatever their kind; calls beyond it
        # (prefetched by the host) wait there, in arrival order.
        self.slots = Slots(capacity, self._claims)
        self.thread_safe = thread_safe
        # Exclusive tools' locks: a Gate for sync tools (waited for in tool threads), an
        # asyncio.Lock for async tools and streams (waited for in their tasks).
        self._gates = {
            t.name: Gate() for t in tools.values() if t.exclusive and t.threaded and not t.streaming
        }
        self._locks = {
            t.name: asyncio.Lock()
            for t in tools.values()
            if t.exclusive and (t.is_async or t.streaming)
        }
        self.in_flight = 0
        self.calls: set[RunningCall] = set()  # accepted and not finished
        self.requests = 0
        self.started = time.monotonic()
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        # Where events outside calls go (the worker's; snakepit_trio.testing has one each).
        self.outlet = current_outlet()
        self.clock: Callable[[], float] = self._loop.time if inline else time.monotonic
        # What run times (reported for prefetch decisions) are measured with.
        self.timer: Callable[[], float] = self._loop.time if inline else time.perf_counter
        self.threads: ToolThreads | InlineTools
        if inline:
            self.threads = InlineTools(
                self._loop,
                self._outcome_frame,
                self._threads_done,
                self.slots.claim,
                self._release_in_thread,
            )
        else:
            self.threads = ToolThreads(
                self._loop,
                capacity,
                self._outcome_frame,
                self._threads_done,
                self.slots.claim,
                self._release_in_thread,
            )

    def end_session(self, session_id: str) -> None:
        """Run the adapter's ``on_session_end`` (after the session's queued calls started)."""
        if self._on_session_end is not None:
            self._loop.create_task(self._session_end(session_id))

    async def _session_end(self, session_id: str) -> None:
        assert self._on_session_end is not None
        try:
            await self._on_session_end(session_id)
        except asyncio.CancelledError:
            raise  # the loop is closing
        except BaseException:
            # SystemExit and KeyboardInterrupt too: raised from a bare task, they would stop
            # the loop, and the worker with every other session on it (see the module doc).
            log.exception("on_session_end(%r) failed", session_id)

    def encode(self, value: Any, *, what: str, memory: Memory | None = None) -> bytes:
        """A result or chunk; large buffers go to ``memory``'s segments, if given (see
        _segments.py).

        Raises:
            SerializationError: it cannot be encoded, whatever the reason (a MemoryError, or
                code of the value's own that raised, included).
            PayloadTooLarge: its encoding is over the payload limit.
        """
        kind = type(value)
        if (kind in _TINY and self._small >= 0) or (
            kind is bytes
            and len(value) <= self._small
            and (memory is None or len(value) < memory.threshold)
        ):
            try:
                packed: bytes = _packb(value, use_bin_type=True)
                return packed
            except OverflowError:
                pass  # an int msgpack cannot hold: encode() below says so
        shm = None
        try:
            if memory is None or (
                type(value) in _SCALARS or (type(value) is bytes and len(value) < memory.threshold)
            ):  # nothing here can go to shared memory: no segment bookkeeping
                return encode(value, what=what, limit=self.max_payload)
            shm = Outbound(memory.segments, memory.threshold)
            payload = encode(value, what=what, limit=self.max_payload, shm=shm)
        except (SerializationError, PayloadTooLarge):
            raise
        except BaseException as exc:  # the call's failure, not the worker's (see module doc)
            if shm is not None:
                shm.release()
            raise SerializationError(f"cannot encode {what}: {describe(exc)}") from exc
        shm.sent(HOST)  # its frame leaves now: the host may map them until it says not
        shm.release()
        return payload

    def encoded_size(self, value: Any, *, what: str, memory: Memory | None = None) -> int:
        """How many bytes ``value`` would take as a result (segments included); nothing
        is kept (its segments, if any, are free again at once).

        Raises:
            SerializationError, PayloadTooLarge: as ``encode``.
        """
        if memory is None:
            return len(encode(value, what=what, limit=self.max_payload))
        shm = Outbound(memory.segments, memory.threshold)
        try:
            return len(encode(value, what=what, limit=self.max_payload, shm=shm)) + shm.size
        except (SerializationError, PayloadTooLarge):
            raise
        except BaseException as exc:  # as encode(): the item's failure, not the worker's
            raise SerializationError(f"cannot encode {what}: {describe(exc)}") from exc
        finally:
            shm.release()

    @staticmethod
    def returned(names: list[str], memory: Memory | None) -> None:
        """UNMAPPED_RESULTS: the host maps none of these segments (of ``memory``) any more."""
        if memory is not None:
            memory.segments.returned(names, HOST)

    def _unmapped_to(self, sink: Sink) -> Callable[[str], None]:
        def unmapped(name: str) -> None:  # any thread, whenever the last view dies
            with self._unmapped_lock:
                self._unmapped.append((sink, name))
                first = len(self._unmapped) == 1
            if first:
                with contextlib.suppress(RuntimeError):  # the loop is closed: exiting
                    self._loop.call_soon_threadsafe(self.flush_unmapped)

        return unmapped

    def flush_unmapped(self) -> None:
        """Tell the host which of its argument segments are no longer mapped here."""
        with self._unmapped_lock:
            pending, self._unmapped = self._unmapped, []
        by_sink: dict[Sink, list[str]] = {}
        for sink, name in pending:
            by_sink.setdefault(sink, []).append(name)
        for sink, names in by_sink.items():
            sink(w.unmapped_args(names))

    def withdraw(self, call: RunningCall) -> bool:
        """On a CANCEL: answer for ``call`` and never start it, if it still waits for a slot.

        Returns:
            True if it was withdrawn (its ERROR frame is sent), False if it had started.
        """
        if not self.slots.withdraw(call):
            return False
        if call.granted is not None and not call.granted.done():
            call.granted.set_result(False)  # its task ends without a word
        call.args.clear()
        call.sink(not_started_frame(call.id))
        self._call_finished(call)
        return True

    async def drain(self) -> None:
        """Wait until no call is running."""
        await self._idle.wait()

    def cancel_all(self) -> None:
        """Cancel every call (the host is stopping this worker and wants none of them):
        calls not begun are withdrawn, async code is cancelled, sync code sees
        ``ctx.cancelled``."""
        for call in list(self.calls):
            call.cancel()

    def start_call(
        self,
        call_id: int,
        tool: str,
        args_payload: bytes,
        session_id: str | None,
        deadline: float | None,
        window: int,
        sink: Sink,
        on_done: Callable[[int], None] | None = None,
        host: HostCalls | None = None,
        *,
        borrowed: bool = False,
        meta: dict[str, Any] | None = None,
        events: Route | None = None,
        memory: Memory | None = None,
    ) -> RunningCall | None:
        """Start a call; on a bad request, send its ERROR frame and return None.

        ``host``: the connection's host calls, for the tool's ``ctx.call_host_tool``.
        ``borrowed``: a nested call whose ancestor waits for it in a host tool here: it
        starts at once, beyond capacity (its ancestor's slot is idle until it ends).
        ``meta``: the CALL's meta map (its trace context); ``events``: the route of EVENT
        frames to its host, if that host takes them (it named "events")."""
        info = self.tools.get(tool)
        if info is None:
            sink(w.error(call_id, "UnknownTool", f"unknown tool {tool!r}", w.KIND_UNKNOWN_TOOL))
            return None
        try:
            args = (
                {}
                if not args_payload
                else decode(
                    args_payload, what=f"arguments of {tool!r}", unmapped=self._unmapped_to(sink)
                )
            )
        except SerializationError as exc:
            sink(w.error(call_id, "SerializationError", str(exc), w.KIND_SERIALIZATION))
            return None
        problem = check_arguments(info, args)
        if problem is not None:
            param, reason = problem
            message = reason if param is None else f"argument {param!r}: {reason}"
            sink(w.error(call_id, "InvalidArguments", message, w.KIND_INVALID_ARGUMENTS))
            return None
        ctx = self._context(call_id, session_id, deadline, sink, host, events)
        if info.context_param is not None:
            args[info.context_param] = ctx
        if meta is not None:
            info = trace_call(ctx, call_id, meta, info)
        credit = max(window, 1) if info.streaming else 0
        call = RunningCall(call_id, info, ctx, credit, sink, on_done, self, args, borrowed, memory)
        return self._launch(call)

    def start_batch(
        self,
        call_id: int,
        tool: str,
        args_payload: bytes,
        session_id: str | None,
        deadline: float | None,
        stop: bool,
        sink: Sink,
        on_done: Callable[[int], None] | None = None,
        host: HostCalls | None = None,
        *,
        borrowed: bool = False,
        meta: dict[str, Any] | None = None,
        events: Route | None = None,
        memory: Memory | None = None,
    ) -> RunningCall | None:
        """Start a BATCH (see _batch.py); on a bad request, send its ERROR frame and
        return None. ``host``, ``borrowed`` and ``events``: as for ``start_call``; a batch
        is not traced (``meta`` is read for ``borrow`` only, by the connection)."""
        info = self.tools.get(tool)
        refusal = batch.refused(call_id, info, tool)
        if refusal is not None:
            sink(refusal)
            return None
        assert info is not None
        try:
            what = f"arguments of a batch of {tool!r}"
            calls = decode(args_payload, what=what, unmapped=self._unmapped_to(sink))
        except SerializationError as exc:
            sink(w.error(call_id, "SerializationError", str(exc), w.KIND_SERIALIZATION))
            return None
        problem = batch.problem(info, calls)
        if problem is not None:
            sink(w.error(call_id, "InvalidArguments", problem, w.KIND_INVALID_ARGUMENTS))
            return None
        ctx = self._context(call_id, session_id, deadline, sink, host, events)
        if info.context_param is not None:
            for args in calls:
                args[info.context_param] = ctx
        run = batch.runner(
            info,
            calls,
            ctx,
            stop=stop,
            encode=functools.partial(self.encode, memory=memory),
            measure=functools.partial(self.encoded_size, memory=memory),
            limit=self.max_payload,
        )
        call = RunningCall(
            call_id, batch.batch_info(info, run), ctx, 0, sink, on_done, self, {}, borrowed, memory
        )
        return self._launch(call)

    def _context(
        self,
        call_id: int,
        session_id: str | None,
        deadline: float | None,
        sink: Sink,
        host: HostCalls | None,
        events: Route | None,
    ) -> ToolContext:
        abs_deadline = None if deadline is None else self.clock() + float(deadline)
        progress = self._progress_emitter(call_id, sink)
        ctx = ToolContext(call_id, session_id, abs_deadline, progress, self.clock, host)
        ctx._route = events  # its events' way to the host (None: the host takes none)
        return ctx

    def _launch(self, call: RunningCall) -> RunningCall:
        """Count ``call`` in and start it, or let it wait for a slot."""
        info = call.info
        call.gate = self._gates.get(info.name)
        self.calls.add(call)
        self.in_flight += 1
        self.requests += 1
        self._idle.clear()
        if call.borrowed or self.slots.take(call):  # borrowed: its ancestor's slot is idle
            self._begin(call)
        elif info.is_async or info.streaming:
            # Its task waits for a slot (so it is a task of the loop's from now on: a loop
            # that stops cancels it like any other).
            call.granted = self._loop.create_future()
            call.task = self._loop.create_task(self._run(call))
        # else (sync) it waits in the slots' queue; the call that frees a slot starts it
        return call

    def _begin(self, call: RunningCall) -> None:
        """Start a call that holds a slot (or is borrowed): on the loop."""
        if call.granted is not None:  # its task waits for this slot
            if call.granted.done():  # withdrawn meanwhile: the slot goes on
                self._release_on_loop()
            else:
                call.granted.set_result(True)
        elif call.info.is_async or call.info.streaming:
            call.task = self._loop.create_task(self._run(call))
        elif call.borrowed:
            self.threads.run_extra(call)
        else:
            self.threads.submit(call)

    def _release_on_loop(self) -> None:
        """An async call or a stream ended: its slot goes to the first waiting call."""
        following = self.slots.give_back()
        if following is not None:
            self._begin(following)

    def _release_in_thread(self) -> RunningCall | None:
        """A sync call ended (in its tool thread, or inline on the loop): its slot goes to
        the first waiting call; returned if it is a sync call, for that thread to run."""
        following: RunningCall | None = self.slots.give_back()
        if following is None or not (following.info.is_async or following.info.streaming):
            return following
        try:
            self._loop.call_soon_threadsafe(self._begin, following)
        except RuntimeError:  # the loop is closed: the process is exiting
            pass
        return None

    def _progress_emitter(
        self, call_id: int, sink: Sink
    ) -> Callable[[float, float | None, str | None], None]:
        def emit(done: float, total: float | None, message: str | None) -> None:
            frame: Frame = w.progress(call_id, *progress_values(done, total, message))
            if threading.get_ident() == self._loop_thread:
                sink(frame)
            else:
                self._loop.call_soon_threadsafe(sink, frame)

        return emit

    async def _run(self, call: RunningCall) -> None:
        """An async call or a stream, which holds its slot (or is borrowed), to its end."""
        args = call.args
        if call.granted is not None and not await call.granted:
            args.clear()  # withdrawn while it waited for a slot: answered already
            return
        if not self.slots.claim(call):  # withdrawn before its task ran: answered already
            args.clear()
            if not call.borrowed:
                self._release_on_loop()
            return
        value: Any = None
        error: BaseException | None = None
        started = self.timer()
        lock = self._locks.get(call.info.name)
        try:
            if lock is not None:
                await lock.acquire()  # exclusive: a CANCEL meanwhile cancels this task
            try:
                if call.info.streaming:
                    await self._run_stream(call, args, call.sink, call.borrowed)
                else:
                    value = await call.info.fn(**args)
            finally:
                if lock is not None:
                    lock.release()
        except BaseException as exc:  # this call's error, whatever it is (see the module doc)
            error = exc
        if not call.borrowed:
            self._release_on_loop()
        args.clear()  # its views of shared memory go before its final frame does
        if not (call.info.streaming and error is None):
            frame = self._outcome_frame(call, value, error, self.timer() - started)
            value = None
            self.flush_unmapped()  # so the host may reuse them as soon as it has the result
            call.sink(frame)
        self._call_finished(call)

    def _outcome_frame(
        self, call: RunningCall, value: Any, error: BaseException | None, run_time: float
    ) -> Frame:
        """The final frame of a call; never raises. Called on the loop or in a tool thread."""
        try:
            if error is None and call.cancel_requested:
                error = asyncio.CancelledError()
            if error is None and type(value) is batch.Packed:  # encoded item by item
                return w.result(call.id, value.payload, run_time)
            if error is None:
                try:
                    what = f"result of {call.info.name!r}"
                    payload = self.encode(value, what=what, memory=call.memory)
                except (SerializationError, PayloadTooLarge) as exc:
                    error = exc
                else:
                    return w.result(call.id, payload, run_time)
            return error_frame(call.id, error)
        except BaseException as exc:  # a thread that died here would lose the call and its slot
            return unreportable_frame(call.id, exc)

    def _threads_done(self, done: list[Done]) -> None:
        self.flush_unmapped()  # before the results: the tool threads dropped their arguments
        for call, frame in done:
            call.sink(frame)
            self._call_finished(call)

    def _call_finished(self, call: RunningCall) -> None:
        self.calls.discard(call)
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()
        if call.on_done is not None:
            call.on_done(call.id)

    async def _run_stream(
        self, call: RunningCall, args: dict[str, Any], sink: Sink, borrowed: bool
    ) -> None:
        what = f"chunk of {call.info.name!r}"
        gen = call.info.fn(**args)
        if not call.info.is_async:
            await self._pump_stream(call, gen, sink, borrowed)
            return
        try:
            while True:
                while call.credit <= 0 and not call.cancel_requested:
                    call.credit_event.clear()
                    await call.credit_event.wait()
                if call.cancel_requested:
                    raise asyncio.CancelledError
                try:
                    item = await gen.__anext__()
                except StopAsyncIteration:
                    break
                call.credit -= 1
                sink(w.chunk(call.id, self.encode(item, what=what, memory=call.memory)))
        finally:
            # Close the generator so its `finally` blocks run, also on cancel or error. What
            # they raise ends the call (not the loop, as SystemExit would from a bare task).
            closing = await _close(gen)
            if closing is not None:
                raise closing
        # Only now: a CANCEL that comes while the generator is being closed must not add an
        # ERROR after an END (a call ends with one final frame; the host kills a worker
        # that sends two). The stream had ended: it ends with END.
        sink(w.end(call.id))

    async def _pump_stream(self, call: RunningCall, gen: Any, sink: Sink, borrowed: bool) -> None:
        what = f"chunk of {call.info.name!r}"
        failed: list[BaseException] = []

        def emit(items: list[Any]) -> None:
            # A burst leaves as one CHUNKS frame (the connection splits it for a host that
            # reads only CHUNK): every chunk encoded before one that fails is still sent.
            if failed:
                return
            encode, memory = self.encode, call.memory
            payloads: list[bytes] = []
            try:
                try:
                    for item in items:
                        payloads.append(encode(item, what=what, memory=memory))
                finally:
                    if payloads:  # those before an item that failed still go
                        sink(w.chunks(call.id, payloads))
            except BaseException as exc:  # the stream's error (the item's or the hand-over's):
                failed.append(exc)  # raised by _pump_stream, so the stream never ends with END
                pump.cancel()

        pump: GeneratorPump | InlinePump
        if self.inline:
            pump = InlinePump(self._loop, gen, call.credit, emit)
            pump.start()
        else:
            pump = GeneratorPump(self._loop, gen, call.credit, emit)
            if borrowed:  # every generator thread may be held by the ancestor it serves
                threading.Thread(target=pump.run, name="snakepit-gen-borrowed", daemon=True).start()
            else:
                self._loop.run_in_executor(self.executor, pump.run)
        call.pump = pump
        while True:
            try:
                finished, error = await asyncio.shield(pump.done)
                break
            except asyncio.CancelledError:
                pump.cancel()  # the thread closes the generator; wait until it has
                if pump.done.done():
                    raise
        if failed:
            raise failed[0]
        if error is not None:
            raise error
        if call.cancel_requested or not finished:
            raise asyncio.CancelledError
        sink(w.end(call.id))


async def _close(gen: Any) -> BaseException | None:
    """Close an async generator and wait until it has closed, even if this task is
    cancelled meanwhile (the call keeps its slot until its code has stopped); what the
    generator's ``finally`` raised, or None."""
    closing = asyncio.ensure_future(_aclose(gen))
    while True:
        try:
            return await asyncio.shield(closing)
        except asyncio.CancelledError:
            if closing.done():
                return closing.result()  # raises only if the loop itself cancelled it


async def _aclose(gen: Any) -> BaseException | None:
    """Close an async generator; what its ``finally`` raised, or None."""
    try:
        await gen.aclose()
    except BaseException as exc:  # returned: raised from this task it would stop the loop
        return exc
    return None
