"""Reading a pool's stats from any thread (a metrics reader's, a scrape handler's).

A pool's state belongs to its Trio thread. A reader there calls ``stats()`` directly; a
reader in another thread (OpenTelemetry's periodic metric reader, prometheus_client's own
HTTP server) has the Trio thread make the snapshot (``trio.from_thread.run_sync``), so it is
consistent. Once the pool's run is over, or the pool has closed, there is nothing to read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Snapshot(Generic[T]):
    def __init__(self, read: Callable[[], T], closed: Callable[[], bool]) -> None:
        self._read = read
        self._closed = closed
        self._token = trio.lowlevel.current_trio_token()

    def __call__(self) -> T | None:
        """The current value, or None when the pool is closed (or cannot be reached)."""
        try:
            here = trio.lowlevel.current_trio_token()
        except RuntimeError:
            here = None
        if here is self._token:
            return None if self._closed() else self._read()
        if here is not None:
            return None  # another Trio run's thread cannot wait for this one
        try:
            return trio.from_thread.run_sync(self._guarded, trio_token=self._token)
        except (trio.RunFinishedError, RuntimeError):
            return None

    def _guarded(self) -> T | None:
        return None if self._closed() else self._read()
