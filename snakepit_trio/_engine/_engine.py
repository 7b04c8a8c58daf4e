"""The engine: carries out the dispatcher's decisions with Trio, and hears from workers.

Hot path of a call: validate -> encode -> ``Dispatcher.submit`` -> the Send action appends a
CALL frame to the worker's channel (coalesced per tick) -> the caller parks with
``wait_task_rescheduled`` (no Event or channel per call) -> the worker's batch arrives through
the channel -> ``on_frames`` checks the whole batch (``_inbound.py``), then applies it ->
``Dispatcher.complete`` -> the caller is rescheduled.

What it is given from outside: a ``Launcher`` (how a worker comes to be) that brings each
worker with its ``Channel`` (how frames travel). It never knows which ones it has. Worker
scheduling state has one owner, the dispatcher; the supervisors report lifecycle events
(ready, exited, quiet) through the ``PoolHooks`` methods at the end of this class.

The public handles (Pool, Session, Stream) are facades over this class; nothing here imports
them.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import trio

from .._config import PoolConfig
from .._core._dispatcher import (
    Action,
    Call,
    CallState,
    Dispatcher,
    DispatcherClosed,
    Fail,
    FailReason,
    QueueFull,
    Revoke,
    Send,
    SendCancel,
    WorkerGone,
)
from .._core._sessions import SessionRecord
from .._errors import (
    InvalidArguments,
    PayloadTooLarge,
    PoolClosed,
    PoolSaturated,
    QueueTimeout,
    RequestTimeout,
    SessionLost,
    SnakepitError,
    WorkerCrashed,
)
from .._progress import ProgressCallback
from .._shared import _frames as w
from .._shared._codec import Outbound, decode
from .._supervision._launcher import Launcher
from .._supervision._supervisor import supervise
from .._supervision._thread_profile import unsafe_threads
from .._supervision._worker import ExitInfo, Worker
from .._tools import ToolSpec
from .._transport._base import Channel
from .._transport._describe import WorkerDescription
from ..telemetry import _calls as call_events
from ..telemetry import _lifecycle as lifecycle_events
from ..telemetry._hub import Hub
from . import _admission as admission
from . import _batches as batches
from ._calls import StreamHandle, UnaryHandle, error_from_frame
from ._counters import Counters
from ._health import Health
from ._host_calls import HostCalls
from ._inbound import Inbound
from ._payloads import Payloads
from ._recycling import Recycler
from ._reentry import place as place_nested
from ._sessions import SessionHost
from ._shutdown import Closer
from ._watchdog import Watchdog

log = logging.getLogger("snakepit_trio")
log.addHandler(logging.NullHandler())  # quiet by default: no "last resort" printing

_BORROW = {"borrow": True}  # CALL meta of a nested call sent in its ancestor's slot


class Engine:
    def __init__(
        self, config: PoolConfig, launcher: Launcher, nursery: trio.Nursery, token: str
    ) -> None:
        self.config = config
        self.launcher = launcher
        self.nursery = nursery
        self.closing = False
        self.core = Dispatcher(
            max_queue=config.max_queue,
            prefetch=config.prefetch,
            prefetch_budget=config.prefetch_budget,
            max_retries=config.max_retries,
        )
        self.workers: dict[str, Worker] = {}  # ready and not yet exited
        # Running counts over self.workers, kept by worker_ready and worker_exited: every
        # call asks them, and a pool may have hundreds of workers.
        self._without_arrow = 0
        self._without_batch = 0
        self._sharing_memory = 0
        self.tools: dict[str, ToolSpec] = {}
        self.counters = Counters()
        self.health = Health(config)
        self.payloads = Payloads(
            token,
            config.shm_threshold,
            self._channel_of,
            lambda: not self.workers or self._sharing_memory > 0,
        )
        self.host_calls = HostCalls(self)
        # Events and traces; every emission point tests telemetry.on first (see _hub.py).
        self.telemetry = Hub(config.name)
        self.sessions = SessionHost(
            max_sessions=config.max_sessions,
            default_ttl=config.session_ttl,
            least_loaded=self._least_loaded_worker,
            is_live=self.core.workers.__contains__,
            send_end=self._send_session_end,
            on_end=self.host_calls.registry.session_closed,
            telemetry=self.telemetry,
        )
        self.recycler = Recycler(self)
        self.watchdog = Watchdog(self)  # its run() is a pool task
        self.inbound = Inbound(self)
        self.closer = Closer(self)
        self.settled = trio.Event()  # closing, and no call is queued or in flight
        self.terminate = trio.Event()  # SIGTERM: drain and stop now
        self.terminated = trio.Event()  # closed: every worker is stopped
        self._workers_changed = trio.Event()
        self._ids = itertools.count(1)
        self._abandon = self._abandon_call  # made once: every waiting call's handle keeps it
        self._incarnations = itertools.count(0)

    # --- starting and stopping -----------------------------------------------------------
    async def start_workers(self) -> None:
        """Start every worker, ``startup_batch_size`` at a time; the first failure raises."""
        from .._errors import WorkerStartError

        errors: list[WorkerStartError] = []
        limiter = trio.Semaphore(self.config.startup_batch_size)

        async def start_one(slot: int, cancel: trio.CancelScope) -> None:
            async with limiter:
                try:
                    await self.nursery.start(supervise, self, self.launcher, slot)
                except WorkerStartError as exc:
                    errors.append(exc)
                    cancel.cancel()

        async with trio.open_nursery() as starters:
            for slot in range(self.config.size):
                starters.start_soon(start_one, slot, starters.cancel_scope)
        if errors:
            raise errors[0]

    def start_replacement(self, slot: int) -> None:
        self.nursery.start_soon(partial(supervise, self, self.launcher, slot, retry_first=True))

    async def wait_replacement(self, slot: int) -> bool:
        """Start a worker in ``slot`` and wait until it is ready; False if the pool closed
        first (its nursery takes no new task, or the supervisor gave up as it closed)."""
        try:
            await self.nursery.start(
                partial(supervise, self, self.launcher, slot, retry_first=True)
            )
        except RuntimeError:
            if self.closing:
                return False
            raise  # anything else is a bug, never "the pool closed"
        return True

    async def shut_down(
        self, drain: bool, *, interrupted: bool = False
    ) -> KeyboardInterrupt | None:
        """Close the pool (see ``_shutdown.py``): queued calls get PoolClosed, running ones
        may finish (``drain``), open sessions end, every worker stops.

        Returns the KeyboardInterrupt that came while it ran, for the caller to raise once
        the pool's nursery is gone; None if none came.
        """
        return await self.closer.close(drain, interrupted)

    def hurry(self, why: str) -> None:
        """Stop waiting for running calls (a second SIGTERM); workers are stopped now."""
        self.closer.hurry(why)

    def check_settled(self) -> None:
        if self.closing:
            if self.core.queued == 0 and self.core.in_flight == 0:
                self.settled.set()
            self.closer.changed()

    # --- the call path -------------------------------------------------------------------
    def spec(self, tool: str, *, streaming: bool) -> ToolSpec:
        if self.closing:
            raise PoolClosed(f"pool {self.config.name!r} is closed; no new calls are accepted")
        return admission.spec(self.tools, tool, streaming=streaming)

    def encode_args(
        self, spec: ToolSpec, args: dict[str, Any] | None, segments: Outbound | None
    ) -> bytes:
        limit = self.config.max_payload_bytes
        return admission.encode_args(spec, args, segments, limit, arrow=self.arrow)

    @property
    def arrow(self) -> bool:
        """Whether the workers read Arrow tables: each ready one names "arrow" (a call may
        go to any of them). With none ready, the worker that takes the call decides."""
        return self._without_arrow == 0

    @property
    def runs_batches(self) -> bool:
        """Whether the workers run BATCH calls: each names "batch" (a call may go to any)."""
        return self._without_batch == 0

    def budget(self, timeout: float | None) -> tuple[float | None, float]:
        """The call's timeout and absolute deadline (inf without one)."""
        return admission.budget(timeout, self.config.timeout, trio.current_time())

    async def execute(
        self,
        tool: str,
        args: dict[str, Any] | None,
        *,
        timeout: float | None,
        idempotent: bool,
        on_progress: ProgressCallback | None,
        kill_on_cancel: bool | None,
        session: SessionRecord | None,
        measured: Callable[[float, int], None] | None = None,
    ) -> Any:
        """Run ``tool`` once; ``measured``, when given, is told the seconds the call ran
        (the worker's count, else the host's from submission) and the bytes of its
        arguments and result, once it has a result."""
        # Few locals here: each is a slot of this coroutine's frame, which every waiting
        # call keeps (what comes before the wait is in _unary_call, after it _unary_value).
        call, timeout, now = self._unary_call(
            tool, args, timeout, idempotent, on_progress, kill_on_cancel
        )
        if self.telemetry.on:
            call.handle.observed = self._observe(call, session, call.handle.payload, stream=False)
        try:
            try:
                frame = await self._submit_and_wait(call, call.handle, timeout, now, session)
            finally:
                if call.handle.segments is not None:
                    call.handle.segments.release()  # the call is over (or abandoned) here
        except BaseException as exc:
            if call.handle.observed is not None:
                call.handle.observed.end(exc)
            raise
        return self._unary_value(call.handle, frame, measured, now)

    def _unary_call(
        self,
        tool: str,
        args: dict[str, Any] | None,
        timeout: float | None,
        idempotent: bool,
        on_progress: ProgressCallback | None,
        kill_on_cancel: bool | None,
    ) -> tuple[Call, float | None, float]:
        """A unary call, checked and encoded, with its handle; its timeout (the pool's
        when None) and when it was made.

        Raises:
            What ``execute`` raises before dispatch.
        """
        admission.check_call(
            tool,
            timeout=timeout,
            idempotent=idempotent,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
        )
        segments = self.payloads.outbound()
        payload = self.encode_args(self.spec(tool, streaming=False), args, segments)
        if segments is not None and not segments.names:
            segments = None  # no shared memory (the usual case): no ledger kept while it waits
        timeout, call_deadline = self.budget(timeout)
        waiter = UnaryHandle(tool, payload, call_deadline, on_progress)
        waiter.segments = segments
        waiter.kill_on_cancel = (
            self.config.kill_on_cancel if kill_on_cancel is None else kill_on_cancel
        )
        return Call(next(self._ids), tool, idempotent, handle=waiter), timeout, trio.current_time()

    def _unary_value(
        self,
        waiter: UnaryHandle,
        frame: w.Result | w.Error,
        measured: Callable[[float, int], None] | None,
        now: float,
    ) -> Any:
        """The value of a unary call's final frame (told to its telemetry and ``measured``).

        Raises:
            The tool's error (``error_from_frame``); SerializationError: the result does not
                decode.
        """
        tool, observed = waiter.tool, waiter.observed
        try:
            if type(frame) is not w.Result:
                assert type(frame) is w.Error
                raise error_from_frame(tool, frame, list(self.tools))
            value = decode(
                frame.result, what=f"result of {tool!r}", unmapped=self.payloads.unmapped
            )
        except BaseException as exc:
            if observed is not None:
                observed.end(exc)
            raise
        if observed is not None:
            observed.result(frame.result, frame.run_time)
            observed.end(None)
        if measured is not None:
            segments = waiter.segments
            sent = len(waiter.payload) + (segments.size if segments is not None else 0)
            run_time = trio.current_time() - now if frame.run_time is None else frame.run_time
            measured(run_time, sent + len(frame.result))
        return value

    def _observe(
        self, call: Call, session: SessionRecord | None, payload: bytes, *, stream: bool
    ) -> call_events.Observed:
        """The telemetry of a call submitted while some handler or tracer is attached."""
        session_id = None if session is None else session.id
        return call_events.start(
            self.telemetry,
            call.id,
            call.tool,
            session_id,
            stream=stream,
            bytes_in=len(payload),
            queue_depth=self.core.queued,
        )

    async def execute_batch(
        self,
        tool: str,
        items: list[Any],
        *,
        timeout: float | None,
        idempotent: bool,
        kill_on_cancel: bool | None,
        stop: bool,
        session: SessionRecord | None,
        split: bool = False,
    ) -> batches.BatchAnswer:
        """Run ``tool`` once per item of ``items`` (their args) in one BATCH call.

        Args:
            split: when the items' arguments together exceed max_payload_bytes, answer
                ``too_large`` (nothing was sent) instead of raising, so that the caller
                may send them in smaller chunks.

        Returns:
            Each item's outcome, in order: (True, value) or (False, error); None for an
            item that did not run (``stop``, after an item that failed). An item whose
            arguments do not fit or encode fails alone, before anything is sent. With
            them, how many items ran, for how long, and the bytes of the call.

        Raises:
            What ``execute`` raises for the call as a whole (its timeout, a crash, ...).
            PayloadTooLarge: the items' arguments together exceed max_payload_bytes
                (unless ``split``).
        """
        admission.check_call(
            tool, timeout=timeout, idempotent=idempotent, kill_on_cancel=kill_on_cancel
        )
        spec = self.spec(tool, streaming=False)
        if not self.runs_batches:
            raise InvalidArguments(
                tool,
                "chunksize",
                "these workers do not run several items in one call (their runtime names no "
                "'batch' capability); use chunksize=1",
            )
        outcomes: list[batches.Outcome | None] = [None] * len(items)
        segments = self.payloads.outbound()
        try:
            try:
                payload, positions, failed = batches.encode_items(
                    spec, items, segments, self.config.max_payload_bytes, arrow=self.arrow
                )
            except PayloadTooLarge:
                if not split:
                    raise
                return batches.BatchAnswer(outcomes, too_large=True)
            for position, error in failed.items():
                outcomes[position] = (False, error)
            if not positions or (failed and stop):
                return batches.BatchAnswer(outcomes)
            timeout, call_deadline = self.budget(timeout)
            now = trio.current_time()
            waiter = batches.BatchHandle(
                tool, payload, call_deadline, count=len(positions), stop=stop
            )
            waiter.unmapped = self.payloads.unmapped
            waiter.segments = segments
            waiter.kill_on_cancel = (
                self.config.kill_on_cancel if kill_on_cancel is None else kill_on_cancel
            )
            call = Call(next(self._ids), tool, idempotent, handle=waiter)
            sent = len(payload) + (segments.size if segments is not None else 0)
            frame = await self._submit_and_wait(call, waiter, timeout, now, session)
        finally:
            if segments is not None:
                segments.release()
        if type(frame) is not w.Result:
            assert type(frame) is w.Error
            raise error_from_frame(tool, frame, list(self.tools))
        if waiter.decode_error is not None:
            raise waiter.decode_error
        assert waiter.entries is not None  # checked with the worker's frames
        done = batches.outcomes(tool, waiter.entries, list(self.tools))
        for position, outcome in zip(positions, done, strict=False):
            outcomes[position] = outcome
        run_time = trio.current_time() - now if frame.run_time is None else frame.run_time
        return batches.BatchAnswer(outcomes, len(done), run_time, sent + len(frame.result))

    def _submit_and_wait(
        self,
        call: Call,
        waiter: UnaryHandle,
        timeout: float | None,
        now: float,
        session: SessionRecord | None,
    ) -> Awaitable[w.Result | w.Error]:
        """Submit ``call``; what it gives, awaited at once, is the final frame.

        Not a coroutine function: outside a session the caller awaits Trio's own wait
        (see ``_wait``), with no frame of ours between, as a queue of 100,000 calls would
        hold 100,000 of them.
        """
        if session is None:
            self.submit(call, place_nested(self, call, None))
            return self._wait(call, waiter, timeout, now)
        return self._submit_and_wait_in(session, call, waiter, timeout, now)

    async def _submit_and_wait_in(
        self,
        session: SessionRecord,
        call: Call,
        waiter: UnaryHandle,
        timeout: float | None,
        now: float,
    ) -> w.Result | w.Error:
        async with self.sessions.use(session, call):
            self.submit(call, place_nested(self, call, session))
            return await self._wait(call, waiter, timeout, now)

    @asynccontextmanager
    async def open_stream(
        self,
        tool: str,
        args: dict[str, Any] | None,
        *,
        timeout: float | None,
        idle_timeout: float | None,
        window: int,
        on_progress: ProgressCallback | None,
        kill_on_cancel: bool | None,
        session: SessionRecord | None,
    ) -> AsyncIterator[StreamHandle]:
        idle_timeout, window = admission.check_stream(
            tool,
            timeout=timeout,
            idle_timeout=idle_timeout,
            window=window,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
        )
        spec = self.spec(tool, streaming=True)
        segments = self.payloads.outbound()
        payload = self.encode_args(spec, args, segments)
        timeout, call_deadline = self.budget(timeout)
        queue_timeout = self.config.queue_timeout
        queue_deadline = math.inf
        if queue_timeout is not None:
            queue_deadline = trio.current_time() + queue_timeout
        handle = StreamHandle(
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
            lambda: list(self.tools),
        )
        handle.kill_on_cancel = (
            self.config.kill_on_cancel if kill_on_cancel is None else kill_on_cancel
        )
        handle.segments = segments
        handle.unmapped = self.payloads.unmapped
        handle.call = Call(next(self._ids), tool, False, handle=handle)
        observed = None
        if self.telemetry.on:
            observed = handle.observed = self._observe(handle.call, session, payload, stream=True)
        try:
            async with self.sessions.use(session, handle.call):
                self.submit(handle.call, place_nested(self, handle.call, session))
                try:
                    yield handle
                finally:
                    if observed is not None:
                        observed.finished = handle.finished
                    handle.close()
        except BaseException as exc:
            if observed is not None:
                call_events.stream_ended(observed, handle, exc)
            raise
        else:
            if observed is not None:
                call_events.stream_ended(observed, handle, None)
        finally:
            if segments is not None:
                segments.release()

    def submit(self, call: Call, borrow: str | None = None) -> None:
        """Submit ``call`` (or, nested in a host tool, send it to ``borrow`` at once: see
        ``_reentry.py``)."""
        if not self.health.admit(call.id):
            self.counters.errors += 1
            raise self.health.unhealthy()
        try:
            if borrow is not None:
                actions = self.core.borrow(call, borrow)
            else:
                actions = self.core.submit(call)
        except QueueFull:
            self.counters.saturated += 1
            self.counters.errors += 1
            raise PoolSaturated(self.config.max_queue or 0) from None
        except DispatcherClosed:
            raise PoolClosed(f"pool {self.config.name!r} is closed") from None
        except WorkerGone:
            raise SessionLost(call.handle.session_id, "its worker is gone") from None
        self.counters.requests += 1
        self.apply(actions)

    def _wait(
        self,
        call: Call,
        waiter: UnaryHandle,
        timeout: float | None,
        now: float,
    ) -> Awaitable[w.Result | w.Error]:
        """Park the calling task until the call's final frame (awaited at once by the
        caller, in its task); with a deadline, in a cancel scope (``_wait_until``)."""
        deadline = waiter.call_deadline
        queue_timeout = self.config.queue_timeout
        if queue_timeout is not None:
            waiter.queue_deadline = now + queue_timeout
            if call.state is CallState.QUEUED:
                deadline = min(deadline, waiter.queue_deadline)
        waiter.task = trio.lowlevel.current_task()
        waiter.call = call
        waiter.abandon = self._abandon  # one bound method for every call
        if deadline == math.inf and queue_timeout is None:
            # No deadline, now or later: a cancel scope per call is measurable overhead,
            # and so is a frame of ours around Trio's wait. The handle is the abort function.
            # Not awaited here: the caller awaits it at once, in this task.
            return trio.lowlevel.wait_task_rescheduled(waiter)  # noqa: ASYNC105
        return self._wait_until(call, waiter, timeout, deadline)

    async def _wait_until(
        self,
        call: Call,
        waiter: UnaryHandle,
        timeout: float | None,
        deadline: float,
    ) -> w.Result | w.Error:
        queue_timeout = self.config.queue_timeout
        with trio.CancelScope(deadline=deadline) as scope:
            if queue_timeout is not None:
                # Send lifts the queue_timeout part of the deadline; a call given back
                # unstarted gets it again (UnaryHandle.requeued).
                waiter.scope = scope
            result: w.Result | w.Error = await trio.lowlevel.wait_task_rescheduled(waiter)
        if not scope.cancelled_caught:
            return result
        self.counters.errors += 1
        if waiter.abandoned_in is CallState.QUEUED and trio.current_time() < waiter.call_deadline:
            self.counters.queue_timeouts += 1
            raise QueueTimeout(queue_timeout or 0.0)
        assert timeout is not None
        started = waiter.abandoned_in is not CallState.QUEUED
        raise RequestTimeout(call.tool, timeout, started=started)

    def _abandon_call(self, call: Call) -> None:
        self.health.gave_up(call.id)
        self.host_calls.call_abandoned(call.id)
        if call.state is CallState.SENT:
            call.handle.cancelled_at = trio.current_time()
            self.watchdog.cancelled()
        self.apply(self.core.abandon(call.id))

    def _grant_credit(self, call: Call, n: int) -> None:
        channel = self._channel_of(call.worker)
        if channel is not None:
            channel.send(w.credit(call.id, n))

    def apply(self, actions: list[Action]) -> None:
        """Carry out the dispatcher's actions (never blocks)."""
        for action in actions:
            if type(action) is Send:
                self._send(action)
            elif type(action) is SendCancel:
                channel = self._channel_of(action.worker)
                if channel is not None:
                    channel.send(w.cancel(action.call.id))
            elif type(action) is Revoke:
                channel = self._channel_of(action.worker)
                if channel is not None:
                    channel.send(w.revoke(action.call.id))
            else:
                assert type(action) is Fail
                self._fail(action)

    def _send(self, action: Send) -> None:
        call, handle = action.call, action.call.handle
        worker = self.workers[action.worker]
        worker.requests += 1
        if self.config.max_requests is not None:
            self.recycler.sent(worker)  # the dispatcher enforces the limit itself
        handle.sent_at = trio.current_time()
        remaining = None
        if handle.call_deadline != math.inf:
            remaining = handle.call_deadline - trio.current_time()
        if handle.scope is not None:
            handle.scope.deadline = handle.call_deadline  # queue_timeout no longer applies
        assert worker.channel is not None
        if self.payloads.pending:  # first: the worker may put this call's result there
            self.payloads.flush()
        if handle.segments is not None:
            if worker.shares_memory:
                handle.segments.sent(worker.id)
            elif handle.segments.names:  # over TCP from another host: it cannot map them
                handle.payload = self.payloads.inline(
                    handle.payload, f"arguments of {call.tool!r}", self.config.max_payload_bytes
                )
                handle.segments = None  # the call's own release() frees them when it ends
        meta = None
        if handle.observed is not None:
            handle.observed.sent(worker.id, handle.sent_at)
            if w.CAP_CALL_META in worker.capabilities:
                meta = handle.observed.meta
        if call.borrowed:  # a nested call in its parked ancestor's slot (_reentry.py)
            meta = _BORROW if meta is None else {**meta, **_BORROW}
        if type(handle) is batches.BatchHandle:
            frame = w.batch(
                call.id, call.tool, handle.payload, handle.session_id, remaining, handle.stop, meta
            )
        else:
            frame = w.call(
                call.id,
                call.tool,
                handle.payload,
                handle.session_id,
                remaining,
                handle.window,
                meta,
            )
        worker.channel.send(frame)

    def _fail(self, action: Fail) -> None:
        handle = action.call.handle
        self.health.gave_up(action.call.id)
        if action.reason is FailReason.SESSION_LOST:
            error: SnakepitError = SessionLost(handle.session_id, "its worker died")
        elif action.reason is FailReason.UNHEALTHY:
            error = self.health.unhealthy()
        elif action.reason is FailReason.CLOSED or handle.crash is None:
            error = PoolClosed(f"pool {self.config.name!r} closed before the call finished")
        else:
            error = handle.crash
        self.counters.errors += 1
        handle.fail(error)

    # --- frames from workers ---------------------------------------------------------------
    def on_frames(self, worker: Worker, raw: object) -> None:
        """A batch from ``worker`` (see ``_inbound.py``)."""
        self.inbound.on_frames(worker, raw)

    # --- what the supervisors report (PoolHooks) -------------------------------------------
    def next_worker_id(self) -> str:
        return f"{self.config.name}-{next(self._incarnations)}"

    def worker_spawned(self, worker: Worker, spawn: float) -> None:
        if self.telemetry.on:
            lifecycle_events.spawned(self.telemetry, worker, spawn)

    def worker_ready(self, worker: Worker, description: WorkerDescription) -> None:
        if not self.tools:
            self.tools = {t.name: t for t in description.tools}
            warning = unsafe_threads(self.config, description)  # once: the first worker's
            if warning is not None:
                log.warning("%s", warning)
        known = self.workers.get(worker.id)
        if known is not None:
            self._count(known, -1)
        worker.capabilities = description.capabilities
        self._count(worker, 1)
        self.workers[worker.id] = worker
        if self.telemetry.on:
            lifecycle_events.ready(self.telemetry, worker)
        if self.closing:  # a replacement that became ready during shutdown
            worker.request_stop()
            return
        self.recycler.check_fresh(worker)
        self.apply(
            self.core.add_worker(worker.id, self.config.worker_capacity, self.config.max_requests)
        )
        self.workers_changed()

    def _count(self, worker: Worker, sign: int) -> None:
        self._without_arrow += sign * (w.CAP_ARROW not in worker.capabilities)
        self._without_batch += sign * (w.CAP_BATCH not in worker.capabilities)
        self._sharing_memory += sign * worker.shares_memory

    def worker_exited(self, worker: Worker, info: ExitInfo, undelivered: set[int]) -> None:
        if self.workers.pop(worker.id, None) is not None:
            self._count(worker, -1)
        self.payloads.gone(worker.id)
        self.host_calls.worker_gone(worker.id)
        worker.gone.set()
        crash: WorkerCrashed | None = None
        headline = ""
        slots = self.core.workers.get(worker.id)
        on_it = [] if slots is None else list(slots.calls.values())
        if not info.expected:
            self.counters.crashes += 1
            running = tuple(sorted({c.tool for c in on_it}))
            crash = self.health.describe_crash(worker, info, running)
            headline = crash.args[0].split("\n")[0]  # without the stderr tail
            log.warning("%s", headline)
        else:
            log.debug("worker %s (pid %d) stopped", worker.id, worker.pid)
        if self.telemetry.on:
            reason = "recycled" if worker.recycling else "closing" if self.closing else "stopped"
            lifecycle_events.exited(self.telemetry, worker, crash, reason)
        for call in on_it:
            call.handle.crash = crash
        self.sessions.worker_died(worker.id, f"worker {worker.id} (pid {worker.pid}) exited")
        self.apply(self.core.remove_worker(worker.id, undelivered))
        for call in on_it:
            if call.state is CallState.QUEUED:  # it never ran there, and waits again
                call.handle.requeued()
        if crash is not None and crash.cause != "stuck":  # killed on purpose: no storm
            self._crashed(f"{crash.cause}: {headline}")
        self.recycler.recheck()  # a replacement may have waited for it to go
        self.check_settled()

    def note_start_failure(self, reason: str, slot: int | None = None) -> None:
        if self.telemetry.on:
            lifecycle_events.start_failed(self.telemetry, slot, reason)
        self._crashed(f"a replacement failed to start: {reason.splitlines()[0]}")

    def _crashed(self, cause: str) -> None:
        if self.health.crashed(cause):
            self.apply(self.core.shed_queue(FailReason.UNHEALTHY))

    def worker_quiet(self, worker: Worker, quiet: bool) -> None:
        """Heartbeats: ``worker`` went silent (no new calls) or answers again."""
        worker.quiet = quiet
        if quiet:
            log.info("worker %s is not answering heartbeats; it gets no new calls", worker.id)
            self.core.suspend_worker(worker.id)
        elif worker.killed_by is None:  # a worker being killed stays suspended
            self.apply(self.core.resume_worker(worker.id))
            self.workers_changed()

    def note_pong(self, worker: Worker, seq: int) -> None:
        """A PONG: closing waits for the one that follows its SESSION_END frames."""
        if self.closing:
            self.closer.pong(worker, seq)

    def kill_worker(self, worker: Worker, reason: str, cause: str) -> None:
        """Kill and replace ``worker`` (stuck, or it broke the protocol). It gets no new
        call from now on: until its process is gone, one would only fail with it."""
        self.core.suspend_worker(worker.id)
        worker.kill(reason, cause)

    def note_restart(self, slot: int, backoff: float) -> None:
        self.counters.restarts += 1
        if self.telemetry.on:
            lifecycle_events.restarted(self.telemetry, slot, backoff)

    # --- helpers ---------------------------------------------------------------------------
    def channel_send(self, worker_id: str, frame: list[Any]) -> bool:
        """Send ``frame`` to a live worker; False if it is gone."""
        channel = self._channel_of(worker_id)
        if channel is None:
            return False
        channel.send(frame)
        return True

    def session_record(self, session_id: str) -> SessionRecord | None:
        return self.sessions.store.get(session_id)

    def _channel_of(self, worker_id: str | None) -> Channel | None:
        worker = self.workers.get(worker_id) if worker_id is not None else None
        return None if worker is None else worker.channel

    def _send_session_end(self, record: SessionRecord) -> None:
        channel = self._channel_of(record.worker)
        if channel is not None:
            channel.send(w.session_end(record.id))

    async def _least_loaded_worker(self) -> str:
        """The worker a new session binds to: among workers that take calls, the one with
        the fewest sessions, then the fewest calls (sessions are the lasting load: binding
        by calls in flight piles sessions opened together onto one worker)."""
        while True:
            if self.closing:
                raise PoolClosed(f"pool {self.config.name!r} is closed")
            open_ = [ws for ws in self.core.workers.values() if ws.accepting]
            if open_:
                break
            # Every worker is restarting, recycling or held: wait for one.
            await self._workers_changed.wait()
        bound = self.sessions.store.bound_to
        worker: str = min(open_, key=lambda ws: (bound(ws.id), len(ws.calls))).id
        return worker

    def workers_changed(self) -> None:
        """A worker may take new sessions again (it was added, or one became free)."""
        self._workers_changed.set()
        self._workers_changed = trio.Event()
