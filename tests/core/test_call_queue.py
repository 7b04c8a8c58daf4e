"""Core layer (synchronous): the dispatcher's queue of waiting calls, against a model.

Calls join in submission order, are put back (at their old place) after a revocation,
leave from anywhere (their caller gave up) or from the front (served); the queue must
always hold exactly the model's calls, oldest first.
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from snakepit_trio._core._call_queue import CallQueue


@attrs.define(eq=False)
class Waiting:
    id: int
    seq: int
    waiting_in: object = None

    def __lt__(self, other: Waiting) -> bool:
        return self.seq < other.seq


OPS = st.lists(
    st.tuples(st.sampled_from(["submit", "put back", "abandon", "serve"]), st.integers(0, 50)),
    max_size=300,
)


@given(OPS)
def test_the_queue_always_holds_the_model_oldest_first(ops: list[tuple[str, int]]) -> None:
    queue = CallQueue()
    model: list[Waiting] = []
    away: list[Waiting] = []  # served earlier, may be put back
    made = 0
    for op, pick in ops:
        if op == "submit":
            made += 1
            call = Waiting(made, made)
            queue.append(call)
            model.append(call)
        elif op == "put back" and away:
            call = away.pop(pick % len(away))
            queue.append(call)
            model.append(call)
        elif op == "abandon" and model:
            call = model.pop(pick % len(model))
            queue.remove(call)
            assert call not in queue
        elif op == "serve" and model:
            oldest = min(model, key=lambda c: c.seq)
            assert queue.first() is oldest
            assert queue.popleft() is oldest
            model.remove(oldest)
            away.append(oldest)
        assert len(queue) == len(model) and bool(queue) is bool(model)
        assert list(queue) == sorted(model, key=lambda c: c.seq)
        assert all(call in queue for call in model)


def test_leaving_from_the_middle_keeps_the_heap_small() -> None:
    queue = CallQueue()
    calls = [Waiting(i, i) for i in range(10_000)]
    for call in calls:
        queue.append(call)
    for call in calls[1:]:
        queue.remove(call)
    assert len(queue) == 1 and len(queue._heap) < 200
    assert queue.popleft() is calls[0]
    with pytest.raises(IndexError):
        queue.popleft()
    with pytest.raises(ValueError):
        queue.remove(calls[0])


def test_a_call_back_while_its_old_entry_remains_is_served_once_in_order() -> None:
    # Its old heap entry and its new one are the same call: the first to reach the top
    # serves it, and the other is dropped.
    queue = CallQueue()
    calls = [Waiting(i, i) for i in range(1, 6)]
    for call in calls:
        queue.append(call)
    queue.remove(calls[2])
    queue.append(calls[2])  # its old entry is still in the heap
    queue.remove(calls[0])
    queue.append(calls[0])
    assert [queue.popleft() for _ in range(5)] == calls
    assert not queue
    with pytest.raises(IndexError):
        queue.popleft()
