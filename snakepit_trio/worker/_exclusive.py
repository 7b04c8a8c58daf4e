"""``@tool(exclusive=True)``: at most one call of the tool runs at a time in a worker.

A call of an exclusive tool takes its slot first (_slots.py), then waits for the tool's lock.
For a sync tool that wait is in its tool thread, on ``Gate``, which a CANCEL wakes (a call
cancelled while it waits never runs its tool). Async tools and streams of both kinds wait on
an ``asyncio.Lock`` in their task, which a CANCEL cancels; a stream holds it until its
generator is closed.
"""

from __future__ import annotations

import threading
from typing import Any


class Gate:
    """One sync tool's lock, waited for in tool threads; a CANCEL wakes its waiters."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = False

    def enter(self, call: Any) -> bool:
        """Wait until no other call of the tool runs; False if ``call`` was cancelled first."""
        with self._cond:
            while self._held:
                if call.cancel_requested:
                    return False
                self._cond.wait()
            if call.cancel_requested:
                return False
            self._held = True
            return True

    def leave(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def wake(self) -> None:
        """A call of the tool was cancelled: a waiter that it is looks again."""
        with self._cond:
            self._cond.notify_all()
