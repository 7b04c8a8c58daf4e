"""Where a call stands (``RunningCall.state``): each call is claimed exactly once.

A call the host sent may have to wait for a slot: a sync unary call in the tool threads'
queue (_threads.py, or the loop's callbacks in _inline.py), any other call on the runtime's
slot semaphore (_runtime.py). Whichever comes first claims it:

- the code that starts it (QUEUED -> RUNNING): a tool thread taking it from the queue, or its
  task on taking a slot; from then on a CANCEL reaches the running code as usual.
- a CANCEL that finds it still waiting (QUEUED -> WITHDRAWN): the loop answers at once with
  ERROR kind "cancelled" and detail ``{"started": False}``, and the call never starts.

Tool threads and the loop race for sync calls, so for those both sides move the state only
while holding the runtime's claim lock (one uncontended acquire per call); a task's state
moves on the loop alone.
"""

from __future__ import annotations

from typing import Final

QUEUED: Final = 0
RUNNING: Final = 1
WITHDRAWN: Final = 2
