"""Core layer (synchronous, no I/O): the dispatcher state machine."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from snakepit_trio._core._dispatcher import (
    Call,
    CallState,
    Dispatcher,
    DispatcherClosed,
    Fail,
    FailReason,
    QueueFull,
    Send,
    SendCancel,
    WorkerGone,
)


def sends(actions: list) -> list[tuple[object, int]]:  # type: ignore[type-arg]
    return [(a.worker, a.call.id) for a in actions if isinstance(a, Send)]


def test_submit_goes_to_least_loaded_worker_then_queues_fifo() -> None:
    d = Dispatcher()
    d.add_worker("a", 2)
    d.add_worker("b", 1)
    assert sends(d.submit(Call(1, "t"))) == [("a", 1)]
    assert sends(d.submit(Call(2, "t"))) == [("a", 2)]  # a tie goes to the first worker
    assert sends(d.submit(Call(3, "t"))) == [("b", 3)]
    assert d.in_flight == 3 and d.queued == 0
    assert d.submit(Call(4, "t")) == [] and d.submit(Call(5, "t")) == []
    assert [c.id for c in d.queue] == [4, 5]
    worker = d.calls[1].worker
    assert sends(d.complete(1, worker)) == [(worker, 4)]


def test_max_queue_refuses_at_once() -> None:
    d = Dispatcher(max_queue=1)
    d.add_worker("a", 1)
    d.submit(Call(1, "t"))
    d.submit(Call(2, "t"))
    with pytest.raises(QueueFull):
        d.submit(Call(3, "t"))
    assert 3 not in d.calls


def test_abandon_queued_leaves_queue_and_sent_sends_cancel_but_keeps_slot() -> None:
    d = Dispatcher()
    d.add_worker("a", 1)
    d.submit(Call(1, "t"))
    d.submit(Call(2, "t"))
    assert d.abandon(2) == []
    assert d.queued == 0 and 2 not in d.calls
    actions = d.abandon(1)
    assert len(actions) == 1 and isinstance(actions[0], SendCancel)
    assert d.calls[1].state is CallState.ABANDONED
    d.submit(Call(3, "t"))
    assert d.queued == 1  # the slot is still held until the worker answers
    assert sends(d.complete(1, "a")) == [("a", 3)]


def test_worker_death_requeues_undelivered_fails_delivered_retries_idempotent() -> None:
    d = Dispatcher()
    d.add_worker("a", 3)
    d.add_worker("b", 1)
    for call in (Call(1, "t"), Call(2, "t", idempotent=True), Call(3, "t"), Call(4, "t")):
        d.submit(call)
    on_a = {cid for cid, c in d.calls.items() if c.worker == "a"}
    assert len(on_a) == 3
    undelivered = {max(on_a)}
    actions = d.remove_worker("a", undelivered=undelivered)
    failed = {a.call.id for a in actions if isinstance(a, Fail)}
    assert all(a.reason is FailReason.CRASHED for a in actions if isinstance(a, Fail))
    retried = {cid for cid in on_a if d.calls.get(cid) is not None}
    assert undelivered <= retried
    assert failed == on_a - retried
    assert all(not d.calls[c].idempotent or d.calls[c].attempts == 1 for c in retried)


def test_idempotent_call_runs_at_most_twice() -> None:
    d = Dispatcher()
    d.add_worker("a", 1)
    d.submit(Call(1, "t", idempotent=True))
    assert d.remove_worker("a") == []
    d.add_worker("b", 1)
    assert d.calls[1].worker == "b" and d.calls[1].attempts == 2
    actions = d.remove_worker("b")
    assert [type(a) for a in actions] == [Fail]


def test_late_frames_from_a_dead_worker_are_ignored() -> None:
    d = Dispatcher()
    d.add_worker("a", 1)
    d.submit(Call(1, "t", idempotent=True))
    d.remove_worker("a")
    d.add_worker("b", 1)
    assert d.complete(1, "a") == []
    assert d.calls[1].worker == "b"


def test_close_refuses_new_calls_and_fail_queued() -> None:
    d = Dispatcher()
    d.add_worker("a", 1)
    d.submit(Call(1, "t"))
    d.submit(Call(2, "t"))
    d.close()
    with pytest.raises(DispatcherClosed):
        d.submit(Call(3, "t"))
    actions = d.fail_queued()
    assert [(type(a), a.call.id, a.reason) for a in actions] == [(Fail, 2, FailReason.CLOSED)]
    assert d.complete(1, "a") == []


def test_prefetch_fills_a_time_budget_and_never_holds_long_calls() -> None:
    d = Dispatcher(prefetch=8, prefetch_budget=0.001)
    d.add_worker("a", 1)
    d.submit(Call(1, "t"))
    assert d.submit(Call(2, "t")) == []  # unknown run time: no prefetch yet
    d.complete(1, "a", run_time=0.0001)  # 0.1 ms calls: 10 fit the budget, capped at 8 ...
    assert d.workers["a"].limit == 1 + 8
    assert sends(d.submit(Call(3, "t"))) == [("a", 3)]  # ... so more may wait in the worker
    d.complete(2, "a", run_time=0.0004)  # average 0.16 ms: 6 fit
    assert d.workers["a"].limit == 1 + 6
    d.complete(3, "a", run_time=1.0)  # one long call turns prefetch off again
    assert d.workers["a"].limit == 1
    d.submit(Call(4, "t"))
    assert d.submit(Call(5, "t")) == []


def test_pinned_calls_wait_for_their_worker_and_keep_order() -> None:
    d = Dispatcher()
    d.add_worker("a", 1)
    d.add_worker("b", 1)
    assert sends(d.submit(Call(1, "t", pin="a"))) == [("a", 1)]
    assert d.submit(Call(2, "t", pin="a")) == []  # "b" is free, but 2 may only run on "a"
    assert d.submit(Call(3, "t", pin="a")) == []
    assert sends(d.submit(Call(4, "t"))) == [("b", 4)]
    assert d.queued == 2
    assert sends(d.complete(1, "a")) == [("a", 2)]
    assert sends(d.complete(2, "a")) == [("a", 3)]


def test_older_call_goes_first_between_pool_queue_and_pinned_queue() -> None:
    d = Dispatcher()
    d.add_worker("a", 1)
    d.submit(Call(1, "t"))
    d.submit(Call(2, "t"))  # pool queue
    d.submit(Call(3, "t", pin="a"))  # a's queue, younger
    assert sends(d.complete(1, "a")) == [("a", 2)]
    assert sends(d.complete(2, "a")) == [("a", 3)]


def test_pinned_calls_fail_with_session_lost_when_their_worker_dies() -> None:
    d = Dispatcher()
    d.add_worker("a", 1)
    d.add_worker("b", 1)
    d.submit(Call(1, "t", pin="a", idempotent=True))
    d.submit(Call(2, "t", pin="a"))
    d.submit(Call(3, "t", pin="a"))
    actions = d.remove_worker("a", undelivered={1})
    reasons = {a.call.id: a.reason for a in actions if isinstance(a, Fail)}
    # Never moved to "b", not even the idempotent one.
    assert reasons == {1: FailReason.SESSION_LOST, 2: FailReason.SESSION_LOST,
                       3: FailReason.SESSION_LOST}  # fmt: skip
    assert not d.calls
    with pytest.raises(WorkerGone):
        d.submit(Call(5, "t", pin="a"))


def test_running_pinned_call_on_a_dead_worker_crashed() -> None:
    d = Dispatcher()
    d.add_worker("a", 1)
    d.submit(Call(1, "t", pin="a"))
    [fail] = d.remove_worker("a")
    assert isinstance(fail, Fail) and fail.reason is FailReason.CRASHED


def test_prefer_uses_the_bound_worker_only_when_it_has_a_free_slot() -> None:
    d = Dispatcher()
    d.add_worker("a", 1)
    d.add_worker("b", 1)
    assert sends(d.submit(Call(1, "t", prefer="b"))) == [("b", 1)]
    assert sends(d.submit(Call(2, "t", prefer="b"))) == [("a", 2)]  # b is busy: any worker
    assert d.submit(Call(3, "t", prefer="b")) == []  # nobody free: the pool queue
    assert sends(d.complete(2, "a")) == [("a", 3)]


def test_abandon_a_pinned_queued_call() -> None:
    d = Dispatcher()
    d.add_worker("a", 1)
    d.submit(Call(1, "t", pin="a"))
    d.submit(Call(2, "t", pin="a"))
    assert d.abandon(2) == [] and d.queued == 0
    assert d.complete(1, "a") == []


class DispatcherMachine(RuleBasedStateMachine):
    """Random interleavings of submits, completions, cancels, deaths and restarts."""

    @initialize(
        prefetch=st.integers(0, 2),
        max_queue=st.none() | st.integers(0, 4),
        max_retries=st.integers(0, 2),
    )
    def setup(self, prefetch: int, max_queue: int | None, max_retries: int) -> None:
        self.d = Dispatcher(
            max_queue=max_queue, prefetch=prefetch, prefetch_budget=0.5, max_retries=max_retries
        )
        self.next_id = 1
        self.next_worker = 0
        self.finished: dict[int, str] = {}  # call id -> how it ended
        self.sent_count: dict[int, int] = {}
        self.idempotent: set[int] = set()
        self.abandoned: set[int] = set()
        self.capacity: dict[str, int] = {}
        self.known_workers: list[str] = []  # live and dead: pins to dead ones are refused
        self.pins: dict[int, str] = {}

    def _apply(self, actions: list) -> None:  # type: ignore[type-arg]
        for a in actions:
            if isinstance(a, Send):
                assert not self.d.workers[a.worker].suspended, "a call went to a quiet worker"
                self.sent_count[a.call.id] = self.sent_count.get(a.call.id, 0) + 1
                pin = self.pins.get(a.call.id)
                assert pin is None or a.worker == pin, "a pinned call ran elsewhere"
            elif isinstance(a, Fail):
                assert a.call.id not in self.finished, "a call finished twice"
                self.finished[a.call.id] = a.reason.value

    @rule(capacity=st.integers(1, 3))
    def add_worker(self, capacity: int) -> None:
        wid = f"w{self.next_worker}"
        self.next_worker += 1
        self.capacity[wid] = capacity
        self.known_workers.append(wid)
        self._apply(self.d.add_worker(wid, capacity))

    @rule(idempotent=st.booleans(), affinity=st.sampled_from(["none", "pin", "prefer"]),
          data=st.data())  # fmt: skip
    def submit(self, idempotent: bool, affinity: str, data: st.DataObject) -> None:
        cid = self.next_id
        self.next_id += 1
        call = Call(cid, "t", idempotent)
        if affinity != "none" and self.known_workers:
            target = data.draw(st.sampled_from(self.known_workers))
            if affinity == "pin":
                call.pin = target
                self.pins[cid] = target
            else:
                call.prefer = target
        try:
            self._apply(self.d.submit(call))
        except (QueueFull, DispatcherClosed, WorkerGone):
            self.finished[cid] = "refused"
            return
        if idempotent:
            self.idempotent.add(cid)

    @precondition(lambda self: any(c.worker is not None for c in self.d.calls.values()))
    @rule(data=st.data(), short=st.booleans())
    def complete(self, data: st.DataObject, short: bool) -> None:
        running = sorted(cid for cid, c in self.d.calls.items() if c.worker is not None)
        cid = data.draw(st.sampled_from(running))
        call = self.d.calls[cid]
        abandoned = call.state is CallState.ABANDONED
        self._apply(self.d.complete(cid, call.worker, 0.1 if short else 1.0))
        assert cid not in self.finished
        self.finished[cid] = "abandoned" if abandoned else "completed"

    @precondition(lambda self: bool(self.d.calls))
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(sorted(self.d.calls)))
        was_queued = self.d.calls[cid].state is CallState.QUEUED
        self._apply(self.d.abandon(cid))
        if was_queued:
            self.finished[cid] = "abandoned"

    @precondition(lambda self: bool(self.d.workers))
    @rule(data=st.data(), lose_some=st.booleans())
    def kill_worker(self, data: st.DataObject, lose_some: bool) -> None:
        wid = data.draw(st.sampled_from(sorted(self.d.workers)))
        on_it = sorted(self.d.workers[wid].calls)
        undelivered = set(on_it[:1]) if lose_some else set()
        for cid in on_it:
            if self.d.calls[cid].state is CallState.ABANDONED:
                self.finished[cid] = "abandoned"
        for cid in undelivered:  # it never ran there: it must not count as a run
            self.sent_count[cid] -= 1
        self._apply(self.d.remove_worker(wid, undelivered))

    @precondition(lambda self: bool(self.d.workers))
    @rule(data=st.data(), quiet=st.booleans())
    def heartbeat(self, data: st.DataObject, quiet: bool) -> None:
        wid = data.draw(st.sampled_from(sorted(self.d.workers)))
        if quiet:
            self.d.suspend_worker(wid)
        else:
            self._apply(self.d.resume_worker(wid))

    @rule()
    def shed(self) -> None:
        self._apply(self.d.shed_queue(FailReason.UNHEALTHY))

    @rule()
    def close(self) -> None:
        self.d.close()
        self._apply(self.d.fail_queued())

    @invariant()
    def capacity_never_exceeded(self) -> None:
        for ws in self.d.workers.values():
            assert len(ws.calls) <= ws.capacity + self.d.prefetch
            assert all(c.worker == ws.id for c in ws.calls.values())

    @invariant()
    def no_call_lost_or_duplicated(self) -> None:
        live = set(self.d.calls)
        assert not (live & set(self.finished)), "a call is both live and finished"
        for cid in range(1, self.next_id):
            assert (cid in live) != (cid in self.finished), f"call {cid} lost"
        placed = [cid for ws in self.d.workers.values() for cid in ws.calls]
        assert len(placed) == len(set(placed)), "a call is on two workers"
        queued = {c.id for c in self.d.queue}
        for ws in self.d.workers.values():
            assert all(c.pin == ws.id for c in ws.pinned)
            assert not ws.pinned or ws.free == 0, "a pinned call waits beside a free slot"
            queued |= {c.id for c in ws.pinned}
        assert queued.isdisjoint(placed)
        assert queued | set(placed) == live

    @invariant()
    def runs_at_most_once_unless_idempotent(self) -> None:
        for cid, n in self.sent_count.items():
            runs = 1 + self.d.max_retries if cid in self.idempotent else 1
            assert n <= runs, f"call {cid} ran {n} times"


TestDispatcherMachine = DispatcherMachine.TestCase
TestDispatcherMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
