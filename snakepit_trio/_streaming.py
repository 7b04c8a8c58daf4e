"""Stream handles: the chunks of a streaming call, with credit-based backpressure.

How it works: the CALL frame grants the worker ``window`` chunks of credit; the worker's
generator pauses when its credit is spent. The host buffers at most ``window`` chunks; each
time the consumer has taken half a window, the host grants that many again (one CREDIT frame).
A slow consumer therefore keeps memory flat on both sides. Leaving the ``async with`` before
the end abandons the call: the worker gets a CANCEL and closes the generator (its ``finally``
runs); the worker's slot stays taken until it has.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import trio

from ._core._dispatcher import Call, CallState
from ._engine._calls import error_from_frame, report_progress
from ._errors import QueueTimeout, RequestTimeout, SnakepitError, StreamIdleTimeout, WorkerCrashed
from ._progress import ProgressCallback
from ._shared import _frames as w
from ._shared._codec import Outbound, Unmapped, decode, segment_names

__all__ = ["Stream"]


@attrs.define(eq=False, repr=False)
class Stream:
    """The chunks a streaming tool yields, in order. Get one from ``pool.stream()``.

    Iterate it with ``async for``. Iteration raises the call's error (``RemoteError``,
    ``WorkerCrashed``, ``RequestTimeout``, ...) after the chunks that arrived before it.
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
    _grant: Callable[[Call, int], None]
    _abandon: Callable[[Call], None]
    _available: Callable[[], list[str]]
    call: Call | None = None
    session_id: str | None = None
    kill_on_cancel: bool = False
    segments: Outbound | None = None  # its arguments' shared memory, if any
    unmapped: Unmapped | None = None  # told of chunk segments no longer mapped here
    scope: trio.CancelScope | None = None  # unused: a stream's deadlines are per wait
    crash: WorkerCrashed | None = None  # set when its worker dies mid-stream
    _buffer: deque[bytes] = attrs.Factory(deque)
    _final: list[Any] | None = None
    _error: SnakepitError | None = None
    _task: Any = None
    _consumed: int = 0
    _received: int = 0

    def __repr__(self) -> str:
        state = "done" if self.finished else "open"
        return (
            f"<Stream {self.tool!r} {state} received={self._received} buffered={len(self._buffer)}>"
        )

    @property
    def finished(self) -> bool:
        """True once the final frame (end or error) arrived or the call failed."""
        return self._final is not None or self._error is not None

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Any:
        while not self._buffer:
            if self._error is not None:
                raise self._error
            if self._final is not None:
                if self._final[0] == w.ERROR:
                    raise error_from_frame(self.tool, self._final, self._available())
                raise StopAsyncIteration
            await self._wait()
        payload = self._buffer.popleft()
        self._consumed += 1
        if self._consumed * 2 >= self.window and not self.finished and self.call is not None:
            self._grant(self.call, self._consumed)
            self._consumed = 0
        return decode(payload, what=f"chunk of {self.tool!r}", unmapped=self.unmapped)

    async def _wait(self) -> None:
        assert self.call is not None
        now = trio.current_time()
        deadline = self.call_deadline
        if self.idle_timeout is not None:
            deadline = min(deadline, now + self.idle_timeout)
        queued = self.call.state is CallState.QUEUED
        if queued:
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
            self._error = RequestTimeout(self.tool, self.timeout, started=started)
        elif not started and now >= self.queue_deadline:
            assert self.queue_timeout is not None
            self._error = QueueTimeout(self.queue_timeout)
        else:
            assert self.idle_timeout is not None
            self._error = StreamIdleTimeout(self.tool, self.idle_timeout)
        raise self._error

    def close(self) -> None:
        """Stop the stream early (``async with`` exit does this): the worker closes the
        generator. Chunks already buffered are dropped."""
        if not self.finished and self.call is not None:
            self._abandon(self.call)
            self._final = [w.END, self.call.id]
        if self.unmapped is not None:
            for payload in self._buffer:  # chunks never read: their maker may reuse them
                for name in segment_names(payload):
                    self.unmapped(name)
        self._buffer.clear()

    # --- called by the pool with the worker's frames ----------------------------------
    def chunk(self, payload: bytes) -> None:
        self._received += 1
        self._buffer.append(payload)
        self._wake()

    def progress(self, frame: list[Any]) -> None:
        report_progress(self.on_progress, frame)

    def deliver(self, frame: list[Any]) -> None:
        self._final = frame
        self._wake()

    def fail(self, error: SnakepitError) -> None:
        self._error = error
        self._wake()

    def _wake(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            trio.lowlevel.reschedule(task)
