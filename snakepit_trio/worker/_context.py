"""ToolContext: what a running tool knows about its call."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from ._events import Route, Span, emit_event


class ToolContext:
    """Passed to a tool that declares a ``ToolContext`` parameter (or one named ``ctx``).

    Attributes:
        request_id: the call's id, unique within the worker's connection.
        session_id: the session the call belongs to, or ``None``.
        deadline: ``time.monotonic()`` value after which the host stops waiting, or ``None``
            (in ``snakepit_trio.testing``, a value of the virtual clock).
    """

    __slots__ = (
        "_cancelled",
        "_clock",
        "_progress",
        "_route",
        "_trace",
        "deadline",
        "request_id",
        "session_id",
    )

    def __init__(
        self,
        request_id: int,
        session_id: str | None,
        deadline: float | None,
        progress: Callable[[float, float | None, str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.request_id = request_id
        self.session_id = session_id
        self.deadline = deadline
        # A plain flag: written on the loop, read by the tool's thread (atomic under the GIL).
        self._cancelled = False
        self._progress = progress
        self._clock = clock  # what deadline is measured on
        # Its events' way to the host, and its trace: set as the call starts (_events.py).
        self._route: Route | None = None
        self._trace: Any = None

    @property
    def cancelled(self) -> bool:
        """True once the host cancelled this call (or it timed out).

        Sync tools run in threads and cannot be interrupted: long loops should check this
        flag and return early. Async tools are cancelled outright and generators closed.
        """
        return self._cancelled

    def time_remaining(self) -> float | None:
        """Seconds left until the host stops waiting for this call.

        Returns:
            Seconds until the deadline (negative once it has passed), or None without one.

        Raises:
            Nothing.
        """
        return None if self.deadline is None else self.deadline - self._clock()

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress to the host; safe to call from any thread, never blocks.

        The caller's ``on_progress`` gets it as a ``Progress``.

        Args:
            done: work done so far, in the tool's own unit (any real number).
            total: the total, when the tool knows it.
            message: a short human-readable note (any value is sent as its ``str``; at
                most 4096 characters of it arrive).

        Raises:
            TypeError: ``done`` or ``total`` is not a real number. After the call was
                cancelled, reports are dropped unchecked.
        """
        if self._progress is not None and not self.cancelled:
            self._progress(done, total, message)

    def emit(
        self,
        name: str,
        measurements: dict[str, float] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Send a telemetry event to the host; safe from any thread, never blocks.

        The host's handlers get it as ``adapter.<name>``, its metadata with ``pool``,
        ``worker_id``, ``call_id``, ``tool`` and ``session_id`` added (those keys are the
        host's).

        Args:
            name: dotted words of letters, digits, ``_`` or ``-`` (``"model.inference"``).
            measurements: numbers by name (seconds, bytes, counts).
            metadata: str, number, bool or None values by name (strings are cut to 4096
                characters).

        Raises:
            TypeError: a value of the wrong type (the message names its key).
            ValueError: a malformed name, a NaN measurement, or more than 64 entries.
        """
        emit_event(self, name, measurements, metadata)

    def span(
        self, name: str, **attributes: str | float | bool | None
    ) -> AbstractContextManager[None]:
        """Time a block: ``with ctx.span("tokenize", model="small"): ...``.

        On leaving it the host gets ``adapter.<name>.stop`` with the block's ``duration``
        in seconds and ``attributes`` as metadata, preceded by ``adapter.<name>.exception``
        (with ``error_type``) when the block raised; the exception propagates. In a call
        traced with OpenTelemetry it is also a span, a child of the call's.

        Args:
            name: as for ``emit`` (at most 190 characters).
            **attributes: str, number, bool or None values.

        Returns:
            A context manager (not reentrant: make one per block).

        Raises:
            TypeError, ValueError: as for ``emit``.
        """
        return Span(self, name, attributes)

    def _cancel(self) -> None:
        self._cancelled = True
