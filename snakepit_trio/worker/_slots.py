"""One limit on the calls a worker runs at once, whatever their kind: ``worker_capacity``.

Sync tools run in tool threads (_threads.py), async tools and streams on the loop; every call
takes a slot here before it starts. Calls beyond the limit (the host sends a few ahead:
prefetch) wait in one queue, in arrival order, and a freed slot goes to the first of them,
from whichever side frees it: a tool thread that finishes a sync call hands its slot on
without a trip through the loop (and runs the next call itself when it is a sync one too),
the loop hands it on when an async call or a stream ends. A borrowed call (nested in a host
tool whose call waits in this worker) takes no slot: it runs beyond the limit.

Claims (_claim.py): a call stays QUEUED until the code that runs it begins: a tool thread or
its task claims it then (QUEUED -> RUNNING). A CANCEL or REVOKE before that withdraws it
(QUEUED -> WITHDRAWN), whether it waits for a slot or already has one: it never starts, and
a slot it had is given back by the runner that finds it withdrawn. Both moves happen under
the runtime's claim lock, from any thread. A withdrawn call still in the queue is skipped
when it comes first.

Invariant: a slot is free only while no call waits (``take`` queues behind waiting calls,
``give_back`` frees a slot only when no call is left to take it).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from ._claim import QUEUED, RUNNING, WITHDRAWN


class Slots:
    def __init__(self, capacity: int, claims: threading.Lock) -> None:
        self.capacity = capacity
        self._free = capacity
        self._waiting: deque[Any] = deque()  # RunningCall, in arrival order
        self._claims = claims

    def take(self, call: Any) -> bool:
        """``call`` arrived: True if a slot is its now (its runner may start it), False if
        it waits for one."""
        with self._claims:
            if self._free and not self._waiting:
                self._free -= 1
                return True
            self._waiting.append(call)
            return False

    def give_back(self) -> Any | None:
        """A call that had a slot ended (or was found withdrawn): the first waiting call that
        is not withdrawn gets the slot (returned, for the caller to start), or it is freed."""
        with self._claims:
            while self._waiting:
                call = self._waiting.popleft()
                if call.state == QUEUED:
                    return call
            self._free += 1
            return None

    def claim(self, call: Any) -> bool:
        """Its runner begins: True if it may run (now RUNNING), False if it was withdrawn."""
        with self._claims:
            if call.state != QUEUED:
                return False
            call.state = RUNNING
            return True

    def withdraw(self, call: Any) -> bool:
        """A CANCEL for ``call``: True if it had not begun (it never starts now)."""
        with self._claims:
            if call.state != QUEUED:
                return False
            call.state = WITHDRAWN
            return True

    @property
    def running(self) -> int:
        """Slots taken now (borrowed calls hold none)."""
        return self.capacity - self._free
