"""Pool: the Trio shell that carries out the dispatcher's decisions (open_pool: _lifecycle.py).

Hot path of ``execute``: validate -> encode -> ``Dispatcher.submit`` -> the Send action
appends a CALL frame to the worker's channel (coalesced per tick) -> the caller parks with
``wait_task_rescheduled`` (no Event or channel per call) -> the worker's RESULT/ERROR frame
arrives in a batch through the bridge -> ``Dispatcher.complete`` -> the caller is rescheduled.
Lifecycle events (ready, exited) come from the supervisors, which own the processes.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import psutil
import trio

from ._config import PoolConfig
from ._core._breaker import BreakerState, CrashBreaker
from ._core._dispatcher import (
    Action,
    Call,
    CallState,
    Dispatcher,
    DispatcherClosed,
    Fail,
    FailReason,
    QueueFull,
    Send,
    SendCancel,
    WorkerGone,
)
from ._core._sessions import SessionRecord
from ._core._worker_state import WorkerEvent, WorkerState
from ._engine._calls import UnaryHandle, error_from_frame
from ._engine._recycling import Recycler
from ._engine._sessions import SessionHost
from ._errors import (
    InvalidArguments,
    PoolClosed,
    PoolSaturated,
    PoolUnhealthy,
    QueueTimeout,
    RequestTimeout,
    SerializationError,
    SessionLost,
    SnakepitError,
    UnknownTool,
    WorkerCrashed,
)
from ._progress import ProgressCallback
from ._session import Session, SessionInfo
from ._shared import _frames as w
from ._shared import _shm
from ._shared._codec import Outbound, decode, encode, segment_names
from ._shared._segments import SegmentCache, maker_of
from ._stats import PoolStats, WorkerInfo
from ._streaming import Stream
from ._supervision._crash import classify, oom_kill_count
from ._supervision._records import WorkerRecords
from ._supervision._supervisor import ExitInfo, Worker
from ._supervision._template import Templates
from ._tools import ParamSpec, ToolSpec, check_arguments
from ._transport._bridge import Bridge

__all__ = ["Pool"]

log = logging.getLogger("snakepit_trio")


log.addHandler(logging.NullHandler())  # quiet by default: no "last resort" printing


def _spec_from_describe(tool: Any) -> ToolSpec:
    params = []
    for p in tool.params:
        default = None
        if not p.required and p.default:
            try:
                default = decode(p.default, what="default")
            except SerializationError:
                default = None
        params.append(ParamSpec(name=p.name, type=p.type, required=p.required, default=default))
    return ToolSpec(
        name=tool.name,
        description=tool.description,
        streaming=tool.streaming,
        params=tuple(params),
        accepts_extra=tool.accepts_extra,
    )


@attrs.define(eq=False, repr=False)
class Pool:
    """A running pool of worker processes. Get one from ``open_pool``; do not construct it."""

    config: PoolConfig
    bridge: Bridge
    socket_dir: str
    _nursery: trio.Nursery
    records: WorkerRecords
    template: Templates | None = None  # forks the workers (start_method)
    closing: bool = False
    _core: Dispatcher = attrs.field(init=False)
    _workers: dict[str, Worker] = attrs.Factory(dict)
    _tools: dict[str, ToolSpec] = attrs.Factory(dict)
    _ids: Any = attrs.Factory(lambda: itertools.count(1))
    _incarnations: Any = attrs.Factory(lambda: itertools.count(0))
    _settled: trio.Event = attrs.Factory(trio.Event)
    _sessions: SessionHost = attrs.field(init=False)
    _workers_changed: trio.Event = attrs.Factory(trio.Event)
    _requests: int = 0
    _errors: int = 0
    _queue_timeouts: int = 0
    _saturated: int = 0
    _restarts: int = 0
    _crashes: int = 0
    _recycles: int = 0
    _recycler: Recycler = attrs.field(init=False)
    terminate: trio.Event = attrs.Factory(trio.Event)  # SIGTERM: drain and stop now
    terminated: trio.Event = attrs.Factory(trio.Event)  # every worker is stopped
    _breaker: CrashBreaker = attrs.field(init=False)
    _segments: SegmentCache | None = attrs.field(init=False)  # our arguments' shared memory
    _unmapped: list[str] = attrs.Factory(list)  # worker segments no longer mapped here
    _unmapped_lock: threading.RLock = attrs.Factory(threading.RLock)
    _token: trio.lowlevel.TrioToken = attrs.Factory(trio.lowlevel.current_trio_token)

    def __attrs_post_init__(self) -> None:
        cfg = self.config
        self._core = Dispatcher(
            max_queue=cfg.max_queue,
            prefetch=cfg.prefetch,
            prefetch_budget=cfg.prefetch_budget,
            max_retries=cfg.max_retries,
        )
        self._recycler = Recycler(self)
        shm_on = cfg.shm_threshold is not None and _shm.available()
        self._segments = SegmentCache(_shm.prefix(self.records.token, "host")) if shm_on else None
        self._breaker = CrashBreaker(cfg.crash_threshold, cfg.crash_window, cfg.probe_after)
        self._sessions = SessionHost(
            max_sessions=cfg.max_sessions,
            default_ttl=cfg.session_ttl,
            least_loaded=self._least_loaded_worker,
            is_live=self._core.workers.__contains__,
            send_end=self._send_session_end,
        )

    # --- public API ----------------------------------------------------------------------
    async def execute(
        self,
        tool: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
        on_progress: ProgressCallback | None = None,
        kill_on_cancel: bool | None = None,
    ) -> Any:
        """Run ``tool`` with keyword ``args`` on a worker and return its result.

        Args:
            tool: the tool's name.
            args: keyword arguments (msgpack-encodable values).
            timeout: budget in seconds for queue wait plus execution (default: the pool's).
            idempotent: if the worker dies mid-call, run it again (``max_retries`` times at
                most, default once), on another worker when there is one.
            on_progress: called with a ``Progress`` for each ``ctx.progress()`` of the tool.
            kill_on_cancel: if the call is cancelled or times out and the tool has not
                stopped ``cancel_grace`` seconds later, kill and replace its worker (other
                calls on that worker then fail with WorkerCrashed). Default: the pool's.

        Raises:
            UnknownTool, InvalidArguments, SerializationError, PayloadTooLarge: before dispatch.
            PoolSaturated, QueueTimeout, RequestTimeout, PoolClosed: see the failure table.
            RemoteError: the tool raised. WorkerCrashed: the worker died mid-call.

        Cancelling the caller sends a cancel to the worker: async tools are cancelled and
        sync tools see ``ctx.cancelled``; the worker's slot stays taken until the tool stops.
        """
        return await self._execute(
            tool, args, timeout, idempotent, on_progress, None, kill_on_cancel
        )

    async def _execute(
        self,
        tool: str,
        args: dict[str, Any] | None,
        timeout: float | None,
        idempotent: bool,
        on_progress: ProgressCallback | None,
        session: SessionRecord | None,
        kill_on_cancel: bool | None = None,
    ) -> Any:
        spec = self._spec(tool)
        if spec.streaming:
            raise InvalidArguments(tool, None, "this tool streams; use pool.stream() instead")
        segments = self._outbound()
        payload = self._encode_args(spec, args, segments)
        if kill_on_cancel is None:
            kill_on_cancel = self.config.kill_on_cancel
        try:
            frame = await self._call(
                tool, payload, timeout, idempotent, on_progress, session, kill_on_cancel, segments
            )
        finally:
            if segments is not None:
                segments.release()  # the call is over (or abandoned) on our side
        if frame[0] == w.RESULT:
            return decode(
                frame[2],
                what=f"result of {tool!r}",
                unmapped=None if self._segments is None else self._unmapped_here,
            )
        raise error_from_frame(tool, frame, list(self._tools))

    def stream(
        self,
        tool: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        window: int = 16,
        on_progress: ProgressCallback | None = None,
    ) -> AbstractAsyncContextManager[Stream]:
        """Run a streaming tool; yields a ``Stream`` to iterate with ``async for``.

        Args:
            tool: a streaming tool (a generator in the adapter).
            args: keyword arguments (msgpack-encodable values).
            timeout: budget in seconds for the whole stream, queue wait included.
            idle_timeout: longest wait for the next chunk (``StreamIdleTimeout``).
            window: chunks the worker may send ahead of the consumer; the host buffers at
                most this many, and the worker's generator pauses when they are unread.
            on_progress: called with a ``Progress`` for each ``ctx.progress()`` of the tool.

        Raises:
            The same errors as ``execute``, while starting or while iterating. A stream is
            never retried: a worker crash mid-stream delivers the chunks already received,
            then raises ``WorkerCrashed``.

        Leaving the block early (``break``, an exception, cancellation) stops the tool: the
        worker closes its generator, so the generator's ``finally`` runs.
        """
        return self._open_stream(tool, args, timeout, idle_timeout, window, on_progress, None)

    @asynccontextmanager
    async def _open_stream(
        self,
        tool: str,
        args: dict[str, Any] | None,
        timeout: float | None,
        idle_timeout: float | None,
        window: int,
        on_progress: ProgressCallback | None,
        session: SessionRecord | None,
    ) -> AsyncIterator[Stream]:
        spec = self._spec(tool)
        if not spec.streaming:
            raise InvalidArguments(tool, None, "this tool does not stream; use pool.execute()")
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a whole number of chunks >= 1, got {window!r}")
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be > 0 seconds or None, got {idle_timeout!r}")
        segments = self._outbound()
        payload = self._encode_args(spec, args, segments)
        timeout, call_deadline = self._budget(timeout)
        queue_timeout = self.config.queue_timeout
        queue_deadline = math.inf
        if queue_timeout is not None:
            queue_deadline = trio.current_time() + queue_timeout
        handle = Stream(
            tool,
            payload,
            window,
            call_deadline,
            queue_deadline,
            timeout,
            queue_timeout,
            idle_timeout,
            on_progress,
            self._grant_credit,
            self._abandon_call,
            lambda: list(self._tools),
        )
        handle.kill_on_cancel = self.config.kill_on_cancel
        handle.segments = segments
        if self._segments is not None:
            handle.unmapped = self._unmapped_here
        handle.call = Call(next(self._ids), tool, False, handle=handle)
        try:
            async with self._sessions.use(session, handle.call):
                self._submit(handle.call)
                try:
                    yield handle
                finally:
                    handle.close()
        finally:
            if segments is not None:
                segments.release()

    async def execute_stream(
        self,
        tool: str,
        args: dict[str, Any] | None,
        callback: Callable[[Any], object],
        **options: Any,
    ) -> None:
        """Snakepit's spelling: call ``callback(chunk)`` (sync or async) for each chunk.

        Returns when the stream ends; ``options`` are those of ``stream()``.
        """
        async with self.stream(tool, args, **options) as chunks:
            await _feed(chunks, callback)

    # --- sessions ------------------------------------------------------------------------
    @asynccontextmanager
    async def session(
        self,
        id: str | None = None,
        *,
        affinity: str = "strict",
        ttl: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AsyncIterator[Session]:
        """Open a session for the block, close it on exit (see ``open_session``)."""
        session = await self.open_session(id, affinity=affinity, ttl=ttl, metadata=metadata)
        try:
            yield session
        finally:
            self.close_session(session.id)

    async def open_session(
        self,
        id: str | None = None,
        *,
        affinity: str = "strict",
        ttl: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Session:
        """Create a session bound to the least-loaded worker.

        Args:
            id: the session id (default: a fresh unique id).
            affinity: ``"strict"`` (calls only ever run on the bound worker; its death makes
                the session lost) or ``"prefer"`` (the bound worker when it is free).
            ttl: close the session after this many idle seconds (default: ``session_ttl``).
            metadata: any values to keep with the session.

        Raises:
            SessionQuotaExceeded: ``max_sessions`` sessions exist already.
            ValueError: a bad affinity or ttl, or the id is taken.
        """
        if self.closing:
            raise PoolClosed(f"pool {self.config.name!r} is closed")
        record = await self._sessions.create(id, affinity=affinity, ttl=ttl, metadata=metadata)
        return Session(self, record)

    def get_session(self, id: str) -> Session | None:
        """The open session with this id, or None."""
        record = self._sessions.store.get(id)
        return None if record is None else Session(self, record)

    def list_sessions(self) -> list[SessionInfo]:
        """A snapshot of every open session."""
        return self._sessions.infos()

    def close_session(self, id: str) -> bool:
        """Close a session (its worker's adapter gets ``on_session_end``); False if unknown."""
        return self._sessions.close(id)

    async def execute_in_session(
        self, session_id: str, tool: str, args: dict[str, Any] | None = None, **options: Any
    ) -> Any:
        """Snakepit's spelling: ``execute`` in session ``session_id``, opened (strict) on
        first use. ``options`` are those of ``execute``."""
        session = self.get_session(session_id) or await self.open_session(session_id)
        return await session.execute(tool, args, **options)

    async def execute_in_session_stream(
        self,
        session_id: str,
        tool: str,
        args: dict[str, Any] | None,
        callback: Callable[[Any], object],
        **options: Any,
    ) -> None:
        """``execute_stream`` in session ``session_id``, opened (strict) on first use."""
        session = self.get_session(session_id) or await self.open_session(session_id)
        async with session.stream(tool, args, **options) as chunks:
            await _feed(chunks, callback)

    def _send_session_end(self, record: SessionRecord) -> None:
        worker = self._workers.get(record.worker)
        if worker is not None and worker.channel is not None:
            worker.channel.send([w.SESSION_END, record.id])

    async def _least_loaded_worker(self) -> str:
        while not self._core.workers:  # every worker is restarting: wait for one
            if self.closing:
                raise PoolClosed(f"pool {self.config.name!r} is closed")
            await self._workers_changed.wait()
        worker: str = min(
            self._core.workers,
            key=lambda w: (self._core.load(w), self._sessions.store.bound_to(w)),
        )
        return worker

    def stats(self) -> PoolStats:
        """A consistent snapshot of the pool's counters (never blocks)."""
        live = [
            wk for wk in self._workers.values() if wk.state in (WorkerState.READY, WorkerState.BUSY)
        ]
        busy = sum(1 for wk in live if wk.state is WorkerState.BUSY)
        return PoolStats(
            workers=len(live),
            available=len(live) - busy,
            busy=busy,
            queued=self._core.queued,
            in_flight=self._core.in_flight,
            requests=self._requests,
            errors=self._errors,
            queue_timeouts=self._queue_timeouts,
            saturated=self._saturated,
            restarts=self._restarts,
            crashes=self._crashes,
            sessions=len(self._sessions.store.sessions),
            recycles=self._recycles,
            health=self._breaker.state.value,
        )

    def workers(self) -> list[WorkerInfo]:
        """One entry per live worker (rss read with psutil; None if unreadable)."""
        now = time.monotonic()
        trio_now = trio.current_time()
        out = []
        for wk in self._workers.values():
            try:
                rss: int | None = psutil.Process(wk.pid).memory_info().rss
            except (psutil.Error, OSError):
                rss = None
            in_flight = self._core.load(wk.id) if wk.id in self._core.workers else 0
            out.append(
                WorkerInfo(
                    id=wk.id,
                    pid=wk.pid,
                    state=wk.state.value,
                    requests=wk.requests,
                    in_flight=in_flight,
                    uptime=now - wk.started_at,
                    rss=rss,
                    silent=max(0.0, trio_now - wk.last_heard),
                )
            )
        return out

    def tools(self) -> list[ToolSpec]:
        """The adapter's tools, as described by its workers."""
        return sorted(self._tools.values(), key=lambda t: t.name)

    def __repr__(self) -> str:
        s = self.stats()
        state = "closing" if self.closing else "open"
        return (
            f"<Pool {self.config.name!r} {state} adapter={self.config.adapter!r} "
            f"workers={s.workers}/{self.config.size} busy={s.busy} queued={s.queued} "
            f"in_flight={s.in_flight} requests={s.requests}>"
        )

    # --- the call path -------------------------------------------------------------------
    def _spec(self, tool: str) -> ToolSpec:
        if self.closing:
            raise PoolClosed(f"pool {self.config.name!r} is closed; no new calls are accepted")
        spec = self._tools.get(tool)
        if spec is None:
            raise UnknownTool(tool, list(self._tools))
        return spec

    def _outbound(self) -> Outbound | None:
        if self._segments is None:
            return None
        return Outbound(self._segments, self.config.shm_threshold or 0)

    def _unmapped_here(self, name: str) -> None:
        """No view of this worker-made segment is left here (any thread, any moment)."""
        with self._unmapped_lock:
            self._unmapped.append(name)
            first = len(self._unmapped) == 1
        if first:
            with contextlib.suppress(trio.RunFinishedError):  # after the run: nobody to tell
                self._token.run_sync_soon(self._flush_unmapped)

    def _flush_unmapped(self) -> None:
        with self._unmapped_lock:
            names, self._unmapped = self._unmapped, []
        pool_prefix = _shm.prefix(self.records.token)
        by_maker: dict[str, list[str]] = {}
        for name in names:
            maker = maker_of(name, pool_prefix)
            if maker is not None:
                by_maker.setdefault(maker, []).append(name)
        for maker, made in by_maker.items():
            worker = self._workers.get(maker)
            if worker is not None and worker.channel is not None:  # a dead one maps nothing
                worker.channel.send([w.UNMAPPED_RESULTS, made])

    def _drop_payload(self, payload: bytes) -> None:
        """A result or chunk that will never be decoded: its maker may reuse its segments."""
        if self._segments is not None:
            for name in segment_names(payload):
                self._unmapped_here(name)

    def _encode_args(
        self, spec: ToolSpec, args: dict[str, Any] | None, segments: Outbound | None
    ) -> bytes:
        if args is None:
            args = {}
        check_arguments(spec, args)
        if not args:
            return b""
        return encode(
            args,
            what=f"arguments of {spec.name!r}",
            limit=self.config.max_payload_bytes,
            shm=segments,
        )

    def _budget(self, timeout: float | None) -> tuple[float | None, float]:
        """The call's timeout and absolute deadline (inf without one)."""
        if timeout is None:
            timeout = self.config.timeout
        elif timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
        return timeout, trio.current_time() + timeout if timeout is not None else math.inf

    def _submit(self, call: Call) -> None:
        breaker = self._breaker
        if breaker.state is not BreakerState.CLOSED and not breaker.admit(
            trio.current_time(), call.id
        ):
            self._errors += 1
            raise self._unhealthy()
        try:
            actions = self._core.submit(call)
        except QueueFull:
            self._saturated += 1
            self._errors += 1
            raise PoolSaturated(self.config.max_queue or 0) from None
        except DispatcherClosed:
            raise PoolClosed(f"pool {self.config.name!r} is closed") from None
        except WorkerGone:
            raise SessionLost(call.handle.session_id, "its worker is gone") from None
        self._requests += 1
        self._apply(actions)

    async def _call(
        self,
        tool: str,
        payload: bytes,
        timeout: float | None,
        idempotent: bool,
        on_progress: ProgressCallback | None,
        session: SessionRecord | None = None,
        kill_on_cancel: bool = False,
        segments: Outbound | None = None,
    ) -> list[Any]:
        timeout, call_deadline = self._budget(timeout)
        now = trio.current_time()
        waiter = UnaryHandle(tool, payload, call_deadline, on_progress)
        waiter.segments = segments
        waiter.kill_on_cancel = kill_on_cancel
        call = Call(next(self._ids), tool, idempotent, handle=waiter)
        if session is not None:
            async with self._sessions.use(session, call):
                self._submit(call)
                return await self._wait_call(call, waiter, timeout, call_deadline, now)
        self._submit(call)
        return await self._wait_call(call, waiter, timeout, call_deadline, now)

    async def _wait_call(
        self,
        call: Call,
        waiter: UnaryHandle,
        timeout: float | None,
        call_deadline: float,
        now: float,
    ) -> list[Any]:
        tool = call.tool
        deadline = call_deadline
        queue_timeout = self.config.queue_timeout
        if call.state is CallState.QUEUED and queue_timeout is not None:
            deadline = min(deadline, now + queue_timeout)
        waiter.task = trio.lowlevel.current_task()
        abort = self._abort_fn(call, waiter)
        if deadline == math.inf:  # no deadline: a cancel scope per call is measurable overhead
            result: list[Any] = await trio.lowlevel.wait_task_rescheduled(abort)
        else:
            with trio.CancelScope(deadline=deadline) as scope:
                if deadline != call_deadline:
                    waiter.scope = scope  # Send lifts the queue_timeout part of the deadline
                result = await trio.lowlevel.wait_task_rescheduled(abort)
        if deadline != math.inf and scope.cancelled_caught:
            self._errors += 1
            if waiter.abandoned_in is CallState.QUEUED and trio.current_time() < call_deadline:
                self._queue_timeouts += 1
                raise QueueTimeout(queue_timeout or 0.0)
            assert timeout is not None
            raise RequestTimeout(tool, timeout, started=waiter.abandoned_in is not CallState.QUEUED)
        return result

    async def _kill_if_stuck(self, call: Call, worker: Worker) -> None:
        """kill_on_cancel: replace ``worker`` if ``call`` still runs after cancel_grace."""
        grace = self.config.cancel_grace
        await trio.sleep(grace)
        if call.state is CallState.ABANDONED and call.worker == worker.id:
            worker.kill(
                f"a cancelled call to {call.tool!r} ran on past cancel_grace={grace:g}s", "stuck"
            )

    def _grant_credit(self, call: Call, n: int) -> None:
        worker = self._workers.get(call.worker)
        if worker is not None and worker.channel is not None:
            worker.channel.send([w.CREDIT, call.id, n])

    def _abandon_call(self, call: Call) -> None:
        self._breaker.gave_up(call.id)
        self._apply(self._core.abandon(call.id))

    def _abort_fn(self, call: Call, waiter: UnaryHandle) -> Callable[[Any], trio.lowlevel.Abort]:
        def abort(_: Any) -> trio.lowlevel.Abort:
            waiter.task = None
            waiter.abandoned_in = call.state
            self._breaker.gave_up(call.id)
            self._apply(self._core.abandon(call.id))
            return trio.lowlevel.Abort.SUCCEEDED

        return abort

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                call, waiter = action.call, action.call.handle
                worker = self._workers[action.worker]
                worker.requests += 1
                limit = self.config.max_requests
                if limit is not None and worker.requests >= limit:
                    self._recycler.recycle(worker, f"served max_requests={limit}")
                remaining = None
                if waiter.call_deadline != math.inf:
                    remaining = waiter.call_deadline - trio.current_time()
                if waiter.scope is not None:
                    waiter.scope.deadline = waiter.call_deadline  # queue_timeout no longer applies
                    waiter.scope = None
                assert worker.channel is not None
                if self._unmapped:  # first: the worker may put this call's result there
                    self._flush_unmapped()
                if waiter.segments is not None:
                    waiter.segments.sent(worker.id)
                worker.channel.send(
                    [
                        w.CALL,
                        call.id,
                        call.tool,
                        waiter.payload,
                        waiter.session_id,
                        remaining,
                        waiter.window,
                    ]
                )
                self._sync_state(worker)
            elif isinstance(action, SendCancel):
                target = self._workers.get(action.worker)
                if target is not None and target.channel is not None:
                    target.channel.send([w.CANCEL, action.call.id])
                    if action.call.handle.kill_on_cancel:
                        self._nursery.start_soon(self._kill_if_stuck, action.call, target)
            elif isinstance(action, Fail):
                waiter = action.call.handle
                self._breaker.gave_up(action.call.id)
                if action.reason is FailReason.SESSION_LOST:
                    error: SnakepitError = SessionLost(waiter.session_id, "its worker died")
                elif action.reason is FailReason.UNHEALTHY:
                    error = self._unhealthy()
                elif action.reason is FailReason.CLOSED or waiter.crash is None:
                    error = PoolClosed(f"pool {self.config.name!r} closed before the call finished")
                else:
                    error = waiter.crash
                self._errors += 1
                waiter.fail(error)

    def _sync_state(self, worker: Worker) -> None:
        slots = self._core.workers.get(worker.id)
        if slots is not None and slots.state is not worker.state:
            busy = slots.state is WorkerState.BUSY
            worker.move(WorkerEvent.FILLED if busy else WorkerEvent.FREED)

    def frames_from(self, worker: Worker) -> Callable[[list[Any]], None]:
        """The bridge calls this (in the Trio thread) with each batch from ``worker``."""

        def on_frames(frames: list[Any]) -> None:
            try:
                self._on_frames(worker, frames)
            except Exception:  # never let a bad frame crash the Trio run loop
                log.exception("dropping a malformed batch from worker %s", worker.id)

        return on_frames

    def _on_frames(self, worker: Worker, frames: list[Any]) -> None:
        core = self._core
        worker.last_heard = trio.current_time()
        if worker.quiet:
            self.worker_quiet(worker, False)
        for frame in frames:
            kind = frame[0]
            if kind == w.PONG:
                worker.last_rss = frame[2]
                continue
            if kind == w.UNMAPPED_ARGS:
                if self._segments is not None and isinstance(frame[1], list):
                    self._segments.returned(frame[1], worker.id)
                continue
            call = core.calls.get(frame[1])
            if call is None or call.worker != worker.id:
                if kind in (w.RESULT, w.CHUNK):
                    self._drop_payload(frame[2])  # never decoded
                continue  # settled already, or a late frame from a worker it left
            if kind == w.CHUNK:
                if call.state is CallState.SENT:
                    call.handle.chunk(frame[2])
                else:
                    self._drop_payload(frame[2])
            elif kind == w.PROGRESS:
                call.handle.progress(frame)
            elif kind in (w.RESULT, w.ERROR, w.END):
                abandoned = call.state is CallState.ABANDONED
                run_time = frame[3] if kind == w.RESULT and len(frame) > 3 else None
                actions = core.complete(frame[1], worker.id, run_time)
                if self._breaker.probe is not None:
                    self._breaker.answered(call.id)
                if not abandoned:
                    if kind == w.ERROR:
                        self._errors += 1
                    call.handle.deliver(frame)
                elif kind == w.RESULT:
                    self._drop_payload(frame[2])
                self._apply(actions)
        self._sync_state(worker)
        slots = self._core.workers.get(worker.id)
        if slots is not None and slots.state is WorkerState.DRAINING and not slots.calls:
            worker.request_stop()  # a recycled worker's last call is done
        self._check_settled()

    def _check_settled(self) -> None:
        if self.closing and self._core.queued == 0 and self._core.in_flight == 0:
            self._settled.set()

    # --- supervisor hooks ----------------------------------------------------------------
    def next_worker_id(self, slot: int) -> str:
        return f"{self.config.name}-{next(self._incarnations)}"

    def worker_ready(self, worker: Worker, describe: Any) -> None:
        if not self._tools:
            self._tools = {t.name: _spec_from_describe(t) for t in describe.tools}
        self._workers[worker.id] = worker
        if self.closing:  # a replacement that became ready during shutdown
            worker.request_stop()
            return
        self._apply(self._core.add_worker(worker.id, self.config.worker_capacity))
        self._workers_changed.set()
        self._workers_changed = trio.Event()
        self._sync_state(worker)

    def worker_exited(self, worker: Worker, info: ExitInfo, undelivered: set[int]) -> None:
        self._workers.pop(worker.id, None)
        if self._segments is not None:
            self._segments.gone(worker.id)  # its mappings of our arguments died with it
        worker.gone.set()
        crash: WorkerCrashed | None = None
        headline = ""
        if not info.expected:
            self._crashes += 1
            crash = self._describe_crash(worker, info)
            headline = crash.args[0].split("\n")[0]  # without the stderr tail
            log.warning("%s", headline)
        else:
            log.debug("worker %s (pid %d) stopped", worker.id, worker.pid)
        slots = self._core.workers.get(worker.id)
        if slots is not None:
            for call in slots.calls.values():
                call.handle.crash = crash
        why = f"worker {worker.id} (pid {worker.pid}) exited"
        self._sessions.worker_died(worker.id, why)
        self._apply(self._core.remove_worker(worker.id, undelivered))
        if crash is not None and crash.cause != "stuck":  # killed on purpose: no storm
            self._note_crash(f"{crash.cause}: {headline}")
        self._check_settled()

    def _describe_crash(self, worker: Worker, info: ExitInfo) -> WorkerCrashed:
        now_oom = oom_kill_count()
        verdict = classify(
            exit_code=info.exit_code,
            signal=info.signal,
            killed_by_pool=worker.killed_by,
            last_rss=worker.last_rss,
            oom_kills_rose=(
                worker.oom_kills is not None and now_oom is not None and now_oom > worker.oom_kills
            ),
            memory_limit_mb=self.config.max_memory_mb,
        )
        return WorkerCrashed(
            worker.id,
            worker.pid,
            info.exit_code,
            info.signal,
            worker.tail(),
            detail=verdict.detail,
            cause=verdict.cause,
            last_rss=worker.last_rss,
        )

    def note_start_failure(self, reason: str) -> None:
        self._note_crash(f"a replacement failed to start: {reason.splitlines()[0]}")

    def _note_crash(self, cause: str) -> None:
        if self._breaker.record_crash(trio.current_time(), cause):
            cfg = self.config
            log.error(
                "pool %r is unhealthy: %d worker crashes within %gs (last: %s); calls fail "
                "with PoolUnhealthy until a probe call succeeds (first probe in %gs)",
                cfg.name,
                len(self._breaker.crashes),
                cfg.crash_window,
                cause,
                cfg.probe_after,
            )
            self._apply(self._core.shed_queue(FailReason.UNHEALTHY))

    def _unhealthy(self) -> PoolUnhealthy:
        b = self._breaker
        return PoolUnhealthy(
            len(b.crashes), self.config.crash_window, b.last_cause, b.retry_in(trio.current_time())
        )

    def worker_quiet(self, worker: Worker, quiet: bool) -> None:
        """Heartbeats: ``worker`` went silent (no new calls) or answers again."""
        worker.quiet = quiet
        if quiet:
            log.info("worker %s is not answering heartbeats; it gets no new calls", worker.id)
            self._core.suspend_worker(worker.id)
        else:
            self._apply(self._core.resume_worker(worker.id))

    def note_restart(self) -> None:
        self._restarts += 1

    def clean_up_after(self, worker_id: str) -> None:
        # Beside the replacement's start, not before it: the scan for tagged processes
        # reads every process's environment (tens of ms), and the replacement has a new id.
        self._nursery.start_soon(self.records.reaped, worker_id)


async def _feed(chunks: Stream, callback: Callable[[Any], object]) -> None:
    async for chunk in chunks:
        result = callback(chunk)
        if inspect.isawaitable(result):
            await result
