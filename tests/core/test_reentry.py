"""Core layer: where a nested call goes (``_core/_reentry.py``), for any set of workers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from snakepit_trio._core._reentry import Borrow, Ordinary, Refuse, WorkerView, place_nested


@st.composite
def views(draw: st.DrawFn) -> list[WorkerView]:
    out = []
    for i in range(draw(st.integers(0, 5))):
        capacity = draw(st.integers(1, 3))
        running = draw(st.integers(0, capacity + 2))
        parked = draw(st.integers(0, running))
        out.append(
            WorkerView(
                id=f"w{i}",
                capacity=capacity,
                running=running,
                parked=parked,
                open=draw(st.booleans()),
                holds_ancestor=parked > 0 and draw(st.booleans()),
            )
        )
    return out


@given(views(), st.integers(1, 6), st.integers(0, 5), st.data())
def test_a_nested_call_never_waits_for_itself(
    candidates: list[WorkerView], depth: int, max_depth: int, data: st.DataObject
) -> None:
    ancestors = data.draw(st.lists(st.sampled_from([v.id for v in candidates] or ["gone"])))
    placement = place_nested(depth, max_depth, candidates, ancestors)
    free = any(v.open and v.running < v.capacity for v in candidates)
    if depth > max_depth:
        assert type(placement) is Refuse and "max_reentry_depth" in placement.reason
    elif free:
        assert type(placement) is Ordinary  # a real free slot: the ordinary way
    elif type(placement) is Borrow:
        # Only in the slot of one of its own parked ancestors, the innermost one that can.
        chosen = next(v for v in candidates if v.id == placement.worker)
        assert chosen.holds_ancestor and placement.worker in ancestors
        holders = {v.id for v in candidates if v.holds_ancestor}
        assert placement.worker == [a for a in ancestors if a in holders][-1]
    elif type(placement) is Refuse:
        # Refused only when no ancestor's slot can be borrowed and every slot is parked.
        assert candidates and all(v.parked >= v.capacity for v in candidates)
        assert not any(v.holds_ancestor and v.id in ancestors for v in candidates)
    else:
        # It queues: some slot is held by a call that is not waiting in a host tool.
        assert not candidates or any(v.parked < v.capacity for v in candidates)


def test_the_cases_by_name() -> None:
    parked = WorkerView("w", capacity=1, running=1, parked=1, open=True, holds_ancestor=True)
    busy = WorkerView("v", capacity=1, running=1, parked=0, open=True, holds_ancestor=False)
    stranger = WorkerView("u", capacity=1, running=1, parked=1, open=True, holds_ancestor=False)
    idle = WorkerView("x", capacity=2, running=1, parked=1, open=True, holds_ancestor=True)
    assert place_nested(1, 4, [parked], ["w"]) == Borrow("w")
    assert place_nested(1, 4, [idle], ["x"]) == Ordinary()
    assert place_nested(1, 4, [busy], ["w"]) == Ordinary()
    assert type(place_nested(1, 4, [stranger], ["w"])) is Refuse
    assert type(place_nested(5, 4, [idle], ["x"])) is Refuse
    assert type(place_nested(1, 0, [idle], ["x"])) is Refuse
    assert place_nested(1, 4, [], ["w"]) == Ordinary()  # workers restarting: it waits
