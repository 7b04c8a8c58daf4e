"""Core layer (synchronous): the dispatcher's index of workers with a free slot, against a scan.

Workers join (each with its ``order``), their room changes, they fill up or leave, in any
interleaving; ``best`` must always be the worker a scan in joining order picks (an idle slot
first, then the most free slots, then the first to join), and the heap must stay small.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from snakepit_trio._core._free_slots import FreeSlots

Room = tuple[bool, int]  # idle, free


def scan(model: dict[int, Room]) -> int | None:
    """The old way: every worker in joining order, the first with the best room wins."""
    best, best_key = None, (False, 0)
    for order in sorted(model):
        if model[order] > best_key:
            best, best_key = order, model[order]
    return best


def test_an_idle_slot_beats_more_prefetch_slots_then_most_free_then_first_to_join() -> None:
    index: FreeSlots[str] = FreeSlots()
    index.put(0, "a", idle=False, free=5)
    index.put(1, "b", idle=True, free=1)
    assert index.best() == "b"
    index.put(2, "c", idle=True, free=2)
    assert index.best() == "c"
    index.put(1, "b", idle=True, free=2)
    assert index.best() == "b"  # a tie: b joined before c
    index.drop(1)
    assert index.best() == "c"
    index.drop(2)
    index.drop(0)
    assert index.best() is None and len(index) == 0


def test_a_room_that_shrinks_and_comes_back_is_filed_once() -> None:
    index: FreeSlots[str] = FreeSlots()
    index.put(0, "a", idle=True, free=1)
    index.put(1, "b", idle=True, free=1)
    for _ in range(1000):  # submit + complete on a: full, then free again
        index.drop(0)
        assert index.best() == "b"
        index.put(0, "a", idle=True, free=1)
        assert index.best() == "a"
    assert sorted(index) == [("a", True, 1), ("b", True, 1)]
    assert index.entries <= 2 * len(index) + 64
    index.put(0, "a", idle=True, free=1)  # unchanged: no new entry
    assert index.entries <= 2 * len(index) + 64


OPS = st.lists(
    st.tuples(
        st.sampled_from(["put", "put", "drop", "best"]),
        st.integers(0, 40),  # which worker
        st.booleans(),  # idle
        st.integers(1, 4),  # free
    ),
    max_size=400,
)


@given(OPS)
def test_best_is_always_what_a_scan_picks(ops: list[tuple[str, int, bool, int]]) -> None:
    index: FreeSlots[int] = FreeSlots()
    model: dict[int, Room] = {}
    for op, order, idle, free in ops:
        if op == "put":
            index.put(order, order, idle=idle, free=free)
            model[order] = (idle, free)
        elif op == "drop":
            index.drop(order)
            model.pop(order, None)
        else:
            assert index.best() == scan(model)
        assert len(index) == len(model)
        assert {w: (i, f) for w, i, f in index} == model
        assert index.entries <= 2 * len(index) + 64, "stale entries piled up"
    assert index.best() == scan(model)
