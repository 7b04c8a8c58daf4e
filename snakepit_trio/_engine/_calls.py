"""The host's side of a call in flight: who waits for its frames, and how errors read.

A handle is attached to each dispatcher ``Call``. The engine hands it the worker's frames
(``chunks``, ``progress``, ``deliver`` for the final frame) or a failure
(``fail``); the handle wakes the Trio task waiting on it. ``UnaryHandle`` is one task
waiting for one final frame; ``StreamHandle`` buffers chunks under a credit window (the
public ``Stream`` wraps it).
Both park their task with ``wait_task_rescheduled``: no Event or channel per call.

Which frames a call may get is checked here (``accepts``), before a batch is applied: a
chunk for a unary call, a result for a stream, or a chunk beyond the credit the host granted
is a protocol violation, and the worker that sent it is replaced.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import attrs
import outcome
import trio

from .._core._dispatcher import Call, CallState
from .._errors import (
    InvalidArguments,
    PayloadTooLarge,
    QueueTimeout,
    RemoteError,
    RequestTimeout,
    SerializationError,
    SnakepitError,
    StreamIdleTimeout,
    UnknownTool,
    WorkerCrashed,
)
from .._progress import Progress, ProgressCallback
from .._shared import _frames as w
from .._shared._codec import Outbound, Unmapped, segment_names
from ..telemetry._calls import Observed

log = logging.getLogger("snakepit_trio")


def error_from_frame(tool: str, frame: w.Error, available: list[str]) -> SnakepitError:
    """The typed error for a worker's ERROR frame."""
    if frame.kind == w.KIND_UNKNOWN_TOOL:
        return UnknownTool(tool, available)
    if frame.kind == w.KIND_INVALID_ARGUMENTS:
        return InvalidArguments(tool, None, frame.message)
    if frame.kind == w.KIND_SERIALIZATION:
        return SerializationError(frame.message)
    if frame.kind == w.KIND_PAYLOAD_TOO_LARGE:
        detail = frame.detail or {}
        return PayloadTooLarge(
            f"result of {tool!r}", int(detail.get("size", 0)), int(detail.get("limit", 0))
        )
    return RemoteError(tool, frame.type, frame.message, frame.traceback)


def report_progress(callback: ProgressCallback | None, frame: w.Progress) -> None:
    if callback is None:
        return
    try:
        callback(Progress(float(frame.done), frame.total, frame.message))
    except Exception:  # a broken progress callback must not break the pool
        log.exception("progress callback failed")


class CallHandle(Protocol):
    """What the engine needs of a call's handle."""

    tool: str
    payload: bytes

    @property
    def window(self) -> int:
        """Chunks the worker may send ahead of the consumer (0 for a unary call)."""

    call_deadline: float
    session_id: str | None
    scope: trio.CancelScope | None
    crash: WorkerCrashed | None
    kill_on_cancel: bool
    nesting: Any
    segments: Outbound | None
    sent_at: float  # when it was last sent to a worker (Trio's clock)
    cancelled_at: float  # when its caller gave up after it was sent (Trio's clock)
    observed: Observed | None  # its telemetry, when it began while some was attached

    def accepts(self, frame: w.CallFrame) -> str | None: ...
    def requeued(self) -> None: ...
    def chunks(self, payloads: list[bytes]) -> None: ...
    def progress(self, frame: w.Progress) -> None: ...
    def deliver(self, frame: w.Result | w.End | w.Error) -> None: ...
    def fail(self, error: SnakepitError) -> None: ...


# no __weakref__ slot: nothing refers to a handle weakly, and a queue of 100,000 calls holds
# one each
@attrs.define(eq=False, weakref_slot=False)
class UnaryHandle:
    """A unary call: one task waits for one final frame.

    The handle is also the abort function of that wait (``__call__``): a closure per call,
    with its cells, cost more than the handle itself, and a queue of 100,000 calls holds
    one wait each. attrs gives it slots, so it has no ``__dict__`` either.
    """

    tool: str
    payload: bytes
    call_deadline: float
    on_progress: ProgressCallback | None = None
    window: ClassVar[int] = 0  # unary: no chunks (a class constant, not a slot per call)
    session_id: str | None = None
    task: Any = None
    queue_deadline: float = math.inf  # while it waits for a worker (queue_timeout)
    scope: trio.CancelScope | None = None  # its wait's deadline, when queue_timeout is set
    crash: WorkerCrashed | None = None  # set when its worker dies mid-call
    nesting: Any = None  # made inside a host tool: its ancestor calls (_host_calls.Nesting)
    abandoned_in: CallState | None = None  # the call's state when its caller gave up
    kill_on_cancel: bool = False
    segments: Outbound | None = None  # its arguments' shared memory, if any
    sent_at: float = 0.0
    cancelled_at: float = 0.0
    observed: Observed | None = None
    call: Call | None = None  # set when its task parks, for __call__
    abandon: Callable[[Call], None] | None = None  # the engine's, told when it is aborted

    def __call__(self, _: Any) -> trio.lowlevel.Abort:
        """Trio's abort function for the waiting task (its caller gave up: a cancel or a
        deadline): the call is abandoned, wherever it is."""
        assert self.call is not None and self.abandon is not None  # set before it parks
        self.task = None
        self.abandoned_in = self.call.state
        self.abandon(self.call)
        return trio.lowlevel.Abort.SUCCEEDED

    def requeued(self) -> None:
        """It is waiting for a worker again (its worker gave it back unstarted): its
        queue_timeout applies again, counted from when it was submitted."""
        if self.scope is not None:
            self.scope.deadline = min(self.call_deadline, self.queue_deadline)

    def accepts(self, frame: w.CallFrame) -> str | None:
        if type(frame) is w.Chunk or type(frame) is w.Chunks or type(frame) is w.End:
            return f"{type(frame).__name__.upper()} for unary call {frame.id}"
        return None

    def deliver(self, frame: w.Result | w.End | w.Error) -> None:
        self._wake(outcome.Value(frame))

    def fail(self, error: SnakepitError) -> None:
        self._wake(outcome.Error(error))

    def chunks(self, payloads: list[bytes]) -> None:
        raise AssertionError("accepts() refuses chunks for unary calls")

    def progress(self, frame: w.Progress) -> None:
        report_progress(self.on_progress, frame)

    def _wake(self, result: outcome.Outcome[Any]) -> None:
        task, self.task = self.task, None
        if task is not None:
            trio.lowlevel.reschedule(task, result)


@attrs.define(eq=False)
class StreamHandle:
    """A streaming call: chunks buffered under a credit window, read by one consumer.

    How the credit works: the CALL frame grants the worker ``window`` chunks; the worker's
    generator pauses when its credit is spent. The host buffers at most ``window`` chunks;
    each time the consumer has taken half a window, the host grants that many again.
    """

    tool: str
    payload: bytes
    window: int
    call_deadline: float
    queue_deadline: float
    timeout: float | None
    queue_timeout: float | None
    idle_timeout: float | None
    on_progress: ProgressCallback | None
    grant: Callable[[Call, int], None]
    abandon: Callable[[Call], None]
    available: Callable[[], list[str]]
    call: Call | None = None
    session_id: str | None = None
    kill_on_cancel: bool = False
    segments: Outbound | None = None  # its arguments' shared memory, if any
    unmapped: Unmapped | None = None  # told of chunk segments no longer mapped here
    scope: trio.CancelScope | None = None  # never set: a stream's deadlines are per wait
    crash: WorkerCrashed | None = None  # set when its worker dies mid-stream
    nesting: Any = None  # made inside a host tool: its ancestor calls (_host_calls.Nesting)
    sent_at: float = 0.0
    cancelled_at: float = 0.0
    observed: Observed | None = None
    buffer: deque[bytes] = attrs.Factory(deque)
    final: w.End | w.Error | None = None
    error: SnakepitError | None = None
    received: int = 0
    _credit: int = -1  # chunks the worker may still send; set from window
    _task: Any = None
    _consumed: int = 0

    what: str = ""  # how a chunk is named in a SerializationError

    def __attrs_post_init__(self) -> None:
        self._credit = self.window
        self.what = f"chunk of {self.tool!r}"

    @property
    def finished(self) -> bool:
        return self.final is not None or self.error is not None

    def accepts(self, frame: w.CallFrame) -> str | None:
        if type(frame) is w.Chunk:
            if self._credit <= 0:
                return f"CHUNK beyond the credit granted to streaming call {frame.id}"
            self._credit -= 1  # counted here: a batch may hold several chunks
        elif type(frame) is w.Chunks:
            n = len(frame.chunks)
            if n == 0:
                return f"CHUNKS with no chunk for streaming call {frame.id}"
            if n > self._credit:
                return (
                    f"CHUNKS of {n} chunks beyond the credit granted to streaming call "
                    f"{frame.id} ({max(self._credit, 0)} left)"
                )
            self._credit -= n
        elif type(frame) is w.Result:
            return f"RESULT for streaming call {frame.id} (a stream ends with END)"
        return None

    def requeued(self) -> None:
        """It is waiting for a worker again: the consumer's wait takes its queue_timeout
        into account again."""
        self._wake()

    def take(self) -> bytes:
        """The first buffered chunk's payload (the buffer is not empty); grants credit back
        each time half a window has been consumed."""
        payload = self.buffer.popleft()
        self._consumed += 1
        if self._consumed * 2 >= self.window and not self.finished and self.call is not None:
            self._credit += self._consumed
            self.grant(self.call, self._consumed)
            self._consumed = 0
        return payload

    async def next_payload(self) -> bytes:
        """The next chunk's payload; raises the call's error, or StopAsyncIteration."""
        while not self.buffer:
            if self.error is not None:
                raise self.error
            if self.final is not None:
                if type(self.final) is w.Error:
                    raise error_from_frame(self.tool, self.final, self.available())
                raise StopAsyncIteration
            await self._wait()
        return self.take()

    async def _wait(self) -> None:
        assert self.call is not None
        now = trio.current_time()
        deadline = self.call_deadline
        if self.idle_timeout is not None:
            deadline = min(deadline, now + self.idle_timeout)
        if self.call.state is CallState.QUEUED:
            deadline = min(deadline, self.queue_deadline)

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._task = None
            return trio.lowlevel.Abort.SUCCEEDED

        with trio.CancelScope(deadline=deadline) as scope:
            self._task = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(abort)
        if not scope.cancelled_caught:
            return
        started = self.call.state is not CallState.QUEUED
        self.close()
        now = trio.current_time()
        if now >= self.call_deadline:
            assert self.timeout is not None
            self.error = RequestTimeout(self.tool, self.timeout, started=started)
        elif not started and now >= self.queue_deadline:
            assert self.queue_timeout is not None
            self.error = QueueTimeout(self.queue_timeout)
        else:
            assert self.idle_timeout is not None
            self.error = StreamIdleTimeout(self.tool, self.idle_timeout)
        raise self.error

    def close(self) -> None:
        """Stop the stream early: the worker closes the generator; buffered chunks go."""
        if not self.finished and self.call is not None:
            self.abandon(self.call)
            self.final = w.End(self.call.id)
        if self.unmapped is not None:
            for payload in self.buffer:  # chunks never read: their maker may reuse them
                for name in segment_names(payload):
                    self.unmapped(name)
        self.buffer.clear()

    # --- called by the engine with the worker's frames ---------------------------------
    def chunks(self, payloads: list[bytes]) -> None:
        """A frame's chunks (one for CHUNK, several for CHUNKS): buffered at once, one
        wake-up."""
        self.received += len(payloads)
        if self.observed is not None:
            for payload in payloads:
                self.observed.chunk(payload)
        self.buffer.extend(payloads)
        self._wake()

    def progress(self, frame: w.Progress) -> None:
        report_progress(self.on_progress, frame)

    def deliver(self, frame: w.Result | w.End | w.Error) -> None:
        assert not isinstance(frame, w.Result)  # refused by accepts()
        self.final = frame
        self._wake()

    def fail(self, error: SnakepitError) -> None:
        self.error = error
        self._wake()

    def _wake(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)
