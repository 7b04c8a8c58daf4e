"""Core layer (synchronous): the worker lifecycle table and the restart backoff."""

from __future__ import annotations

import pytest

from snakepit_trio._core._backoff import Backoff, RestartPolicy
from snakepit_trio._core._worker_state import (
    TRANSITIONS,
    LifecycleError,
    WorkerEvent,
    WorkerState,
    transition,
)


def test_happy_path() -> None:
    s = WorkerState.STARTING
    for event, expected in [
        (WorkerEvent.READY, WorkerState.READY),
        (WorkerEvent.FILLED, WorkerState.BUSY),
        (WorkerEvent.FREED, WorkerState.READY),
        (WorkerEvent.DRAIN, WorkerState.DRAINING),
        (WorkerEvent.EXITED, WorkerState.DEAD),
    ]:
        s = transition(s, event)
        assert s is expected


def test_illegal_moves_name_state_and_event() -> None:
    with pytest.raises(LifecycleError, match="DEAD cannot handle READY"):
        transition(WorkerState.DEAD, WorkerEvent.READY)
    with pytest.raises(LifecycleError, match="DRAINING cannot handle READY"):
        transition(WorkerState.DRAINING, WorkerEvent.READY)
    # Every live state can die; nothing leaves DEAD.
    for state in WorkerState:
        if state is not WorkerState.DEAD:
            assert TRANSITIONS[state, WorkerEvent.EXITED] is WorkerState.DEAD
        else:
            assert not [k for k in TRANSITIONS if k[0] is WorkerState.DEAD]


def test_backoff_grows_caps_and_resets() -> None:
    b = Backoff(RestartPolicy(initial=0.1, factor=2, max_delay=0.5, reset_after=10))
    assert [b.next_delay(uptime=0.0) for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert b.next_delay(uptime=11.0) == 0.1


def test_policy_validates() -> None:
    with pytest.raises(ValueError):
        RestartPolicy(initial=-1)
    with pytest.raises(ValueError):
        RestartPolicy(factor=0.5)
