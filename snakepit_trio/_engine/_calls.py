"""The host's side of a call in flight: who waits for its frames, and how errors read.

A handle is attached to each dispatcher ``Call``. The pool hands it the worker's frames
(``chunk``, ``progress``, ``deliver`` for the final frame) or a failure (``fail``); the
handle wakes the Trio task waiting on it. Unary calls use ``UnaryHandle``; streams use
``Stream`` (``_streaming.py``), which has the same interface.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import outcome
import trio

from .._core._dispatcher import CallState
from .._errors import (
    InvalidArguments,
    PayloadTooLarge,
    RemoteError,
    SerializationError,
    SnakepitError,
    UnknownTool,
    WorkerCrashed,
)
from .._progress import ProgressCallback, progress_from_frame
from .._shared import _frames as w
from .._shared._codec import Outbound

log = logging.getLogger("snakepit_trio")


def error_from_frame(tool: str, frame: list[Any], available: list[str]) -> SnakepitError:
    """The typed error for a worker's ERROR frame."""
    _, _, type_, message, tb, kind, *rest = frame
    if kind == w.KIND_UNKNOWN_TOOL:
        return UnknownTool(tool, available)
    if kind == w.KIND_INVALID_ARGUMENTS:
        return InvalidArguments(tool, None, message)
    if kind == w.KIND_SERIALIZATION:
        return SerializationError(message)
    if kind == w.KIND_PAYLOAD_TOO_LARGE:
        detail = rest[0] if rest else {}
        return PayloadTooLarge(
            f"result of {tool!r}", int(detail.get("size", 0)), int(detail.get("limit", 0))
        )
    return RemoteError(tool, type_, message, tb)


def report_progress(callback: ProgressCallback | None, frame: list[Any]) -> None:
    if callback is None:
        return
    try:
        callback(progress_from_frame(frame))
    except Exception:  # a broken progress callback must not break the pool
        log.exception("progress callback failed")


@attrs.define(eq=False)
class UnaryHandle:
    """A unary call: one task waits for one final frame."""

    tool: str
    payload: bytes
    call_deadline: float
    on_progress: ProgressCallback | None = None
    window: int = 0
    session_id: str | None = None
    task: Any = None
    scope: trio.CancelScope | None = None  # set while a queue_timeout shortens the deadline
    crash: WorkerCrashed | None = None  # set when its worker dies mid-call
    abandoned_in: CallState | None = None  # the call's state when its caller gave up
    kill_on_cancel: bool = False
    segments: Outbound | None = None  # its arguments' shared memory, if any

    def deliver(self, frame: list[Any]) -> None:
        self._wake(outcome.Value(frame))

    def fail(self, error: SnakepitError) -> None:
        self._wake(outcome.Error(error))

    def chunk(self, payload: bytes) -> None:
        log.warning("ignoring a stream chunk for unary call to %r", self.tool)

    def progress(self, frame: list[Any]) -> None:
        report_progress(self.on_progress, frame)

    def _wake(self, result: outcome.Outcome[Any]) -> None:
        task, self.task = self.task, None
        if task is not None:
            trio.lowlevel.reschedule(task, result)
