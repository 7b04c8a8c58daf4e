"""The worker lifecycle as a transition table.

How this works: each worker incarnation moves STARTING -> READY, then between READY and
BUSY as its calls fill and free its capacity, then DRAINING (no new calls) when it is told to
stop, then DEAD when its process is gone. A crash may jump to DEAD from any live state. Any
other move is a bug and raises LifecycleError naming the state and the event.
"""

from __future__ import annotations

import enum


class WorkerState(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    DRAINING = "draining"
    DEAD = "dead"


class WorkerEvent(enum.Enum):
    READY = "ready"  # handshake done, channel open
    FILLED = "filled"  # in-flight calls reached capacity
    FREED = "freed"  # a slot freed below capacity
    DRAIN = "drain"  # stop taking new calls
    EXITED = "exited"  # the process is gone


class LifecycleError(RuntimeError):
    pass


S, E = WorkerState, WorkerEvent

TRANSITIONS: dict[tuple[WorkerState, WorkerEvent], WorkerState] = {
    (S.STARTING, E.READY): S.READY,
    (S.STARTING, E.EXITED): S.DEAD,
    (S.STARTING, E.DRAIN): S.DRAINING,
    (S.READY, E.FILLED): S.BUSY,
    (S.READY, E.FREED): S.READY,
    (S.READY, E.DRAIN): S.DRAINING,
    (S.READY, E.EXITED): S.DEAD,
    (S.BUSY, E.FREED): S.READY,
    (S.BUSY, E.FILLED): S.BUSY,
    (S.BUSY, E.DRAIN): S.DRAINING,
    (S.BUSY, E.EXITED): S.DEAD,
    (S.DRAINING, E.FILLED): S.DRAINING,
    (S.DRAINING, E.FREED): S.DRAINING,
    (S.DRAINING, E.DRAIN): S.DRAINING,
    (S.DRAINING, E.EXITED): S.DEAD,
}


def transition(state: WorkerState, event: WorkerEvent) -> WorkerState:
    """Return the state after ``event``; raise LifecycleError for an illegal move."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise LifecycleError(f"worker in state {state.name} cannot handle {event.name}") from None
