"""Core layer (synchronous, no I/O): the dispatcher state machine."""

from __future__ import annotations

import random
from typing import Any

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
    Revoke,
    Send,
    SendCancel,
    WorkerGone,
)
from snakepit_trio._core._worker_state import WorkerState


def sends(actions: list) -> list[tuple[object, int]]:  # type: ignore[type-arg]
    return [(a.worker, a.call.id) for a in actions if isinstance(a, Send)]


def least_loaded_by_scan(d: Dispatcher) -> object:
    """The worker a pool call goes to, found by looking at every worker in the order they
    joined: an idle slot before a prefetch slot, then the most free slots, then the first."""
    best, best_key = None, (False, 0)
    for ws in d.workers.values():
        if ws.free > 0:
            key = (len(ws.calls) < ws.capacity, ws.free)
            if key > best_key:
                best, best_key = ws.id, key
    return best


def check_indexes_against_a_scan(d: Dispatcher) -> None:
    """What the dispatcher keeps so that no call scans the workers is what a scan finds."""
    workers = list(d.workers.values())
    orders = [ws.order for ws in workers]
    assert orders == sorted(set(orders)), "workers out of joining order"
    # The free-slot heap holds exactly the workers with room for a pool call, each with its
    # room, and no more stale entries than it allows.
    expected = {ws.id: (len(ws.calls) < ws.capacity, ws.free) for ws in workers if ws.free > 0}
    assert {ws.id: (idle, free) for ws, idle, free in d._free} == expected
    assert all(d.workers.get(ws.id) is ws for ws, _, _ in d._free), "a gone worker is filed"
    assert d._free.entries <= 2 * len(d._free) + 64, "stale heap entries piled up"
    # Between events no worker's own queue waits beside its room: none is set aside.
    assert not d._pin_ready
    assert not [ws.id for ws in workers if ws.pinned and ws.pin_free > 0]
    assert d.in_flight == sum(len(ws.calls) for ws in workers)
    assert d.queued == len(d.queue) + sum(len(ws.pinned) for ws in workers)


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


def test_requeued_calls_keep_submission_order_across_deaths() -> None:
    d = Dispatcher(max_retries=1)
    d.add_worker("a", 1)
    d.add_worker("b", 1)
    d.submit(Call(1, "t", idempotent=True))  # on a
    d.submit(Call(2, "t"))  # on b
    assert d.remove_worker("a") == []  # 1 crashed; its retry waits in the pool queue
    assert d.remove_worker("b", undelivered={2}) == []  # 2 never reached b: it waits too
    assert [c.id for c in d.queue] == [1, 2]  # not [2, 1]: 1 is older
    assert sends(d.add_worker("c", 1)) == [("c", 1)]


def test_a_requeued_older_call_still_goes_before_a_younger_pinned_call() -> None:
    d = Dispatcher()
    d.add_worker("a", 1)
    d.add_worker("w", 1)
    d.add_worker("b", 1)
    assert sends(d.submit(Call(1, "t"))) == [("a", 1)]
    assert sends(d.submit(Call(2, "t"))) == [("w", 2)]
    assert d.submit(Call(3, "t", pin="w")) == []  # waits in w's own queue
    assert sends(d.submit(Call(4, "t"))) == [("b", 4)]
    d.remove_worker("a", undelivered={1})
    d.remove_worker("b", undelivered={4})
    # w frees: the oldest waiting call is 1 (pool queue), older than the pinned 3.
    assert sends(d.complete(2, "w")) == [("w", 1)]


def test_a_worker_keeps_its_calls_when_its_prefetch_shrinks() -> None:
    d = Dispatcher(prefetch=2, prefetch_budget=0.5)
    d.add_worker("a", 1)
    d.submit(Call(1, "t"))
    d.complete(1, "a", run_time=0.1)
    ws = d.workers["a"]
    assert ws.limit == 3
    for cid in (2, 3, 4):
        d.submit(Call(cid, "t", pin="a"))
    assert d.submit(Call(5, "t", pin="a")) == []
    assert d.complete(2, "a", run_time=5.0) == []  # long calls: no prefetch any more
    assert ws.limit == 1 and len(ws.calls) == 2 and ws.free == -1  # 3 and 4 stay
    assert d.complete(3, "a", run_time=5.0) == []  # still at its limit: 5 waits
    assert sends(d.complete(4, "a", run_time=5.0)) == [("a", 5)]


def test_a_draining_worker_gets_nothing_new_and_finishes_what_it_runs() -> None:
    d = Dispatcher()
    d.add_worker("a", 2)
    d.submit(Call(1, "t"))
    d.drain_worker("a")
    assert d.submit(Call(2, "t")) == [] and d.submit(Call(3, "t", pin="a")) == []
    assert d.complete(1, "a") == []  # done normally; 2 and 3 still wait
    assert 1 not in d.calls and d.queued == 2
    assert sends(d.add_worker("b", 1)) == [("b", 2)]  # 3 may only run on a


def test_a_worker_running_a_cancelled_call_gets_no_new_calls() -> None:
    d = Dispatcher()
    d.add_worker("a", 2)
    d.add_worker("b", 1)
    d.submit(Call(1, "t"))  # on a
    assert isinstance(d.abandon(1)[0], SendCancel)
    # a still has a free slot, but the cancelled call may be stuck: new calls go to b.
    assert sends(d.submit(Call(2, "t"))) == [("b", 2)]
    assert d.submit(Call(3, "t")) == []
    assert sends(d.complete(1, "a")) == [("a", 3)]  # the cancelled call ended: a is back


def test_revoked_calls_rejoin_the_queue_in_order_and_may_run_elsewhere() -> None:
    d = Dispatcher(prefetch=4)
    d.add_worker("a", 1)
    d.complete(d.submit(Call(1, "t"))[0].call.id, "a", 0.0001)  # short calls: prefetch
    for cid in (2, 3, 4):
        assert sends(d.submit(Call(cid, "t"))) == [("a", cid)]
    revokes = d.revoke_waiting("a")
    assert [(type(a), a.call.id) for a in revokes] == [(Revoke, 2), (Revoke, 3), (Revoke, 4)]
    assert d.revoke_waiting("a") == []  # each call is revoked once
    assert d.revoked(4, "a") == [] and d.revoked(3, "a") == []  # a is stalled: no prefetch
    assert [c.id for c in d.queue] == [3, 4] and d.calls[3].attempts == 0
    assert sends(d.add_worker("b", 1)) == [("b", 3)]
    assert sends(d.complete(2, "a", 0.0001)) == [("a", 4)]  # 2 had started: it just ends
    assert d.revoked(2, "a") == []  # late: ignored


def test_a_revoked_call_whose_caller_left_just_ends() -> None:
    d = Dispatcher(prefetch=2)
    d.add_worker("a", 1)
    d.complete(d.submit(Call(1, "t"))[0].call.id, "a", 0.0001)
    d.submit(Call(2, "t"))
    d.submit(Call(3, "t"))
    d.revoke_waiting("a")
    d.abandon(3)
    assert d.workers["a"].held == 1
    assert d.revoked(3, "a") == [] and 3 not in d.calls and d.workers["a"].held == 0


def test_max_requests_is_a_hard_limit_except_for_pinned_calls() -> None:
    d = Dispatcher(prefetch=4)
    d.add_worker("a", 1, max_requests=2)
    d.complete(d.submit(Call(1, "t"))[0].call.id, "a", 0.0001)
    assert sends(d.submit(Call(2, "t"))) == [("a", 2)]
    assert d.workers["a"].exhausted
    assert d.submit(Call(3, "t")) == []  # prefetch room, but the limit is reached
    assert sends(d.submit(Call(4, "t", pin="a"))) == [("a", 4)]  # its session runs on
    assert sends(d.add_worker("b", 1, max_requests=2)) == [("b", 3)]


class NoScan(dict):  # type: ignore[type-arg]
    """The dispatcher's workers, refusing to be looked through."""

    def values(self) -> Any:
        raise AssertionError("a per-call event scanned every worker")

    items = keys = __iter__ = values


def test_per_call_events_never_look_at_every_worker() -> None:
    d = Dispatcher(prefetch=2, max_queue=100)
    for w in range(50):
        d.add_worker(f"w{w}", 2, max_requests=1000)
    d.workers = NoScan(d.workers)
    ids = iter(range(1, 10_000))
    for _ in range(120):  # fill every slot, then queue
        d.submit(Call(next(ids), "t"))
    d.submit(Call(next(ids), "t", pin="w3"))
    d.submit(Call(next(ids), "t", prefer="w4"))
    d.abandon(120)  # a queued call leaves
    d.abandon(1)  # a sent one is cancelled: its worker is held
    assert d.queued == 21 and d.in_flight == 100
    for cid in range(1, 60):
        d.complete(cid, d.calls[cid].worker, 0.0001)  # prefetch opens up
    d.revoked(61, d.calls[61].worker)  # it waits again, and goes where there is room
    assert d.queued == 0 and d.in_flight == 62


def test_the_choice_in_a_large_pool_is_what_a_scan_finds() -> None:
    """Hundreds of workers, every kind of event, seeded, in phases that fill the pool (queues
    form) and drain it: each pool call goes where a scan of every worker sends it, and the
    indexes agree with the scan after every event."""
    rng = random.Random(7)
    d = Dispatcher(prefetch=2, prefetch_budget=0.5, max_retries=1)
    workers = [f"w{i}" for i in range(150)]
    for wid in workers:
        d.add_worker(wid, rng.randint(1, 2), max_requests=rng.choice([None, 5, 50]))
    events = ["submit", "complete", "abandon", "revoke", "heartbeat", "replace", "retire"]
    next_id = 1
    for step in range(3000):
        filling = step // 750 % 2 == 0
        weights = [70 if filling else 20, 20 if filling else 70, 4, 2, 2, 1, 1]
        [event] = rng.choices(events, weights)
        live = sorted(d.workers)
        running = sorted(cid for cid, c in d.calls.items() if c.worker is not None)
        if event == "submit":
            call = Call(next_id, "t", idempotent=rng.random() < 0.5)
            next_id += 1
            if rng.random() < 0.1:
                call.prefer = rng.choice(live)
            elif rng.random() < 0.1:
                call.pin = rng.choice(live)
            expected = least_loaded_by_scan(d) if not d.queue else None  # else it waits
            actions = d.submit(call)
            if call.pin is None and (call.prefer is None or call.worker != call.prefer):
                assert sends(actions) == ([] if expected is None else [(expected, call.id)])
        elif event == "complete" and running:
            cid = rng.choice(running)
            d.complete(cid, d.calls[cid].worker, rng.choice([None, 0.01, 0.2, 2.0]))
        elif event == "abandon" and d.calls:
            d.abandon(rng.choice(sorted(d.calls)))
        elif event == "revoke" and running:
            cid = rng.choice(running)
            d.revoke_waiting(d.calls[cid].worker)
            d.revoked(cid, d.calls[cid].worker)
        elif event == "heartbeat":
            wid = rng.choice(live)
            if d.workers[wid].suspended:
                d.resume_worker(wid)
            else:
                d.suspend_worker(wid)
        elif event == "replace":
            d.remove_worker(rng.choice(live))
            workers.append(f"w{len(workers)}")
            d.add_worker(workers[-1], rng.randint(1, 2))
        elif event == "retire":
            d.retire_worker(rng.choice(live))
        check_indexes_against_a_scan(d)


class DispatcherMachine(RuleBasedStateMachine):
    """Random interleavings of submits, completions, cancels, drains, deaths and restarts.

    The machine keeps its own model of where each call is (waiting in the pool queue, waiting
    in a worker's own queue, or holding a slot on a worker) from the actions the dispatcher
    returns, and checks the dispatcher against it after every step.
    """

    @initialize(
        prefetch=st.integers(0, 3),
        max_queue=st.none() | st.integers(0, 6),
        max_retries=st.integers(0, 2),
        capacities=st.lists(st.integers(1, 3), min_size=1, max_size=3),
        max_requests=st.none() | st.integers(1, 4),
    )
    def setup(
        self,
        prefetch: int,
        max_queue: int | None,
        max_retries: int,
        capacities: list[int],
        max_requests: int | None,
    ) -> None:
        self.d = Dispatcher(
            max_queue=max_queue, prefetch=prefetch, prefetch_budget=0.5, max_retries=max_retries
        )
        self.next_id = 1
        self.next_worker = 0
        self.finished: dict[int, str] = {}  # call id -> how it ended
        self.sent_count: dict[int, int] = {}  # Sends that reached the worker
        self.idempotent: set[int] = set()
        self.known_workers: list[str] = []  # live and dead: pins to dead ones are refused
        self.pins: dict[int, str] = {}
        self.seq: dict[int, int] = {}  # call id -> submission order
        # The model: every live call is in exactly one of these.
        self.pool_waiting: set[int] = set()
        self.pinned_waiting: dict[str, set[int]] = {}  # worker -> its own queue
        self.running: dict[int, str] = {}  # call id -> the worker holding its slot
        self.cancelled: set[int] = set()  # running, but the caller is gone (SendCancel sent)
        self.draining: set[str] = set()
        self.suspended: set[str] = set()
        self.max_requests = max_requests
        self.sends_to: dict[str, int] = {}  # Sends each worker was given, pinned or not
        self.revoking: set[int] = set()  # a Revoke is out, the worker has not answered
        for capacity in capacities:
            self.add_worker(capacity)

    # --- the model follows the actions ---------------------------------------------------
    def _waiting(self) -> set[int]:
        return self.pool_waiting.union(*self.pinned_waiting.values())

    def _apply(self, actions: list) -> None:  # type: ignore[type-arg]
        for a in actions:
            if isinstance(a, Send):
                self._sent(a.worker, a.call)
            elif isinstance(a, Revoke):
                cid = a.call.id
                assert self.running.get(cid) == a.worker, "a revoke for a call not there"
                assert cid not in self.cancelled and cid not in self.revoking
                assert cid not in self.pins, "a pinned call was revoked"
                self.revoking.add(cid)
            elif isinstance(a, SendCancel):
                assert self.running.get(a.call.id) == a.worker, "a cancel for a call not there"
                assert a.call.id not in self.cancelled, "a call cancelled twice"
                self.cancelled.add(a.call.id)
            elif isinstance(a, Fail):
                assert a.call.id not in self.finished, "a call finished twice"
                self.finished[a.call.id] = a.reason.value
                self.pool_waiting.discard(a.call.id)
                for waiting in self.pinned_waiting.values():
                    waiting.discard(a.call.id)
                self.running.pop(a.call.id, None)

    def _sent(self, wid: str, call: Call) -> None:
        cid = call.id
        ws = self.d.workers.get(wid)
        assert ws is not None, "a call went to a dead worker"
        assert wid not in self.suspended, "a call went to a quiet worker"
        assert wid not in self.draining, "a call went to a draining worker"
        held = [x for x in self.cancelled if self.running.get(x) == wid]
        assert not held, f"a call went to {wid}, held by the cancelled {held}"
        pin = self.pins.get(cid)
        sent_before = self.sends_to.get(wid, 0)
        if pin is None and self.max_requests is not None:
            assert sent_before < self.max_requests, f"{wid} was sent past max_requests"
        assert pin is None or wid == pin, "a pinned call ran elsewhere"
        mine = self.pinned_waiting[wid]
        assert cid in (mine if pin is not None else self.pool_waiting), "sent from nowhere"
        # FIFO: the pool queue serves its calls in submission order, a worker's own queue
        # too, and between the two the older call goes first. So when a call is sent to a
        # worker, no older call still waits that this worker could have run instead.
        # A worker at max_requests may run only its pinned calls.
        may_take_pool = self.max_requests is None or sent_before < self.max_requests
        could_run = (self.pool_waiting if may_take_pool else set()) | mine
        older = [x for x in could_run if self.seq[x] < self.seq[cid]]
        assert not older, f"call {cid} went to {wid} before the older {older}"
        (mine if pin is not None else self.pool_waiting).remove(cid)
        self.running[cid] = wid
        self.sends_to[wid] = sent_before + 1
        self.sent_count[cid] = self.sent_count.get(cid, 0) + 1
        # The limit in force now (capacity + this worker's current prefetch) caps every Send.
        held = sum(1 for w in self.running.values() if w == wid)
        assert held <= ws.limit, f"{wid} was sent a call past its limit"

    # --- rules ---------------------------------------------------------------------------
    # A small pool, so that queues form; draining workers are on their way out.
    @precondition(lambda self: len(self.d.workers) - len(self.draining) < 3)
    @rule(capacity=st.integers(1, 3))
    def add_worker(self, capacity: int) -> None:
        wid = f"w{self.next_worker}"
        self.next_worker += 1
        self.known_workers.append(wid)
        self.pinned_waiting[wid] = set()
        self._apply(self.d.add_worker(wid, capacity, self.max_requests))

    @rule(data=st.data(), n=st.integers(1, 3))
    def submit(self, data: st.DataObject, n: int) -> None:
        """A few calls at once, so that workers fill and queues form."""
        for _ in range(n):
            idempotent = data.draw(st.booleans())
            affinity = data.draw(st.sampled_from(["none", "pin", "prefer"]))
            self._submit_one(idempotent, affinity, data)

    def _submit_one(self, idempotent: bool, affinity: str, data: st.DataObject) -> None:
        cid = self.next_id
        self.next_id += 1
        call = Call(cid, "t", idempotent)
        target = None
        if affinity != "none" and self.known_workers:
            target = data.draw(st.sampled_from(self.known_workers))
            if affinity == "pin":
                call.pin = target
            else:
                call.prefer = target
        preferred = self.d.workers.get(target) if affinity == "prefer" else None
        # prefer: the bound worker when it has an idle slot and no older call waits.
        expect_preferred = (
            preferred is not None
            and preferred.free > 0
            and len(preferred.calls) < preferred.capacity
            and not self.pool_waiting
            and not self.d.closed
        )
        # Otherwise, with nothing older in the pool queue, the least-loaded worker.
        by_scan = least_loaded_by_scan(self.d) if call.pin is None else None
        expect_least_loaded = not expect_preferred and call.pin is None and not self.pool_waiting
        waiting_before = len(self._waiting())
        room = self.d.has_room(call.pin)  # what bulk calls ask before submitting
        try:
            actions = self.d.submit(call)
        except DispatcherClosed:
            assert self.d.closed
            self.finished[cid] = "refused"
            return
        except WorkerGone:
            assert call.pin is not None and call.pin not in self.d.workers
            self.finished[cid] = "refused"
            return
        except QueueFull:
            assert self.d.max_queue is not None and waiting_before >= self.d.max_queue
            assert not room, "has_room() said a refused call had room"
            self.finished[cid] = "refused"
            return
        assert room, "has_room() said an accepted call had none"
        assert not self.d.closed and (call.pin is None or call.pin in self.d.workers)
        assert all(seq < call.seq for seq in self.seq.values()), "submission order"
        self.seq[cid] = call.seq
        if idempotent:
            self.idempotent.add(cid)
        if call.pin is not None:
            self.pins[cid] = call.pin
            self.pinned_waiting[call.pin].add(cid)
        else:
            self.pool_waiting.add(cid)
        self._apply(actions)
        assert len(actions) <= 1
        if not actions:  # it waits: max_queue counts every waiting call, pinned or not
            assert self.d.max_queue is None or waiting_before < self.d.max_queue
        if expect_preferred:
            assert sends(actions) == [(target, cid)], "a prefer call skipped its idle worker"
        elif expect_least_loaded:
            expected = [] if by_scan is None else [(by_scan, cid)]
            assert sends(actions) == expected, "not the least-loaded worker a scan finds"

    @precondition(lambda self: bool(self.running))
    @rule(data=st.data(), run_time=st.sampled_from([None, 0.01, 0.1, 0.3, 1.0, 5.0]))
    def complete(self, data: st.DataObject, run_time: float | None) -> None:
        cid = data.draw(st.sampled_from(sorted(self.running)))
        wid = self.running[cid]
        actions = self.d.complete(cid, wid, run_time)
        # A call's final frame settles it normally, draining worker or not.
        assert not any(isinstance(a, Fail | SendCancel) for a in actions)
        assert cid not in self.d.calls and cid not in self.d.workers[wid].calls
        del self.running[cid]
        self.revoking.discard(cid)
        self.finished[cid] = "abandoned" if cid in self.cancelled else "completed"
        self._apply(actions)

    @precondition(lambda self: bool(self.running))
    @rule(data=st.data())
    def revoke_waiting(self, data: st.DataObject) -> None:
        """The shell saw a worker make no progress: take back what may wait there."""
        wid = data.draw(st.sampled_from(sorted(set(self.running.values()))))
        actions = self.d.revoke_waiting(wid)
        expected = {
            cid
            for cid, w in self.running.items()
            if w == wid
            and cid not in self.cancelled
            and cid not in self.pins
            and cid not in self.revoking
        }
        assert all(isinstance(a, Revoke) and a.worker == wid for a in actions)
        assert {a.call.id for a in actions} == expected
        self._apply(actions)

    def _unstarted(self) -> list[int]:
        return sorted(c for c in self.revoking | self.cancelled if c in self.running)

    @precondition(lambda self: bool(self._unstarted()))
    @rule(data=st.data())
    def not_started(self, data: st.DataObject) -> None:
        """The worker gives a call back that it had not started (revoked or cancelled)."""
        cid = data.draw(st.sampled_from(self._unstarted()))
        wid = self.running.pop(cid)
        self.revoking.discard(cid)
        self.sent_count[cid] -= 1  # it never ran
        self.sends_to[wid] -= 1  # nor counts against the worker's limit in the model
        if cid in self.cancelled:
            self.finished[cid] = "abandoned"
        elif cid in self.pins:
            self.pinned_waiting[wid].add(cid)
        else:
            self.pool_waiting.add(cid)
        actions = self.d.revoked(cid, wid)
        assert not any(isinstance(a, Fail | SendCancel) for a in actions)
        self._apply(actions)

    @precondition(lambda self: bool(self.d.workers))
    @rule(data=st.data())
    def retire_worker(self, data: st.DataObject) -> None:
        """Over a limit: no new calls, waiting ones taken back."""
        wid = data.draw(st.sampled_from(sorted(self.d.workers)))
        self.draining.add(wid)
        self._apply(self.d.retire_worker(wid))

    @precondition(lambda self: self.next_id > 1)
    @rule(data=st.data())
    def late_frame(self, data: st.DataObject) -> None:
        """A final frame for a call that is not on that worker (any more): ignored."""
        cid = data.draw(st.integers(1, self.next_id - 1))
        wid = data.draw(st.sampled_from([*self.known_workers, "w-unknown"]))
        if self.running.get(cid) != wid:  # else it is a real completion
            assert self.d.complete(cid, wid, 0.1) == []

    @precondition(lambda self: bool(self.d.calls))
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(sorted(self.d.calls)))
        actions = self.d.abandon(cid)
        if cid in self._waiting():
            assert actions == []
            self.pool_waiting.discard(cid)
            for waiting in self.pinned_waiting.values():
                waiting.discard(cid)
            self.finished[cid] = "abandoned"
        elif cid in self.cancelled:
            assert actions == []
        else:
            assert [(type(a), a.worker, a.call.id) for a in actions] == [
                (SendCancel, self.running[cid], cid)
            ]
        self._apply(actions)

    @precondition(lambda self: bool(self.d.workers))
    @rule(data=st.data())
    def kill_worker(self, data: st.DataObject) -> None:
        # Mostly a worker with work: that is where a death has consequences.
        busy = sorted({*self.running.values(), *(w for w, q in self.pinned_waiting.items() if q)})
        candidates = busy if busy and data.draw(st.booleans()) else sorted(self.d.workers)
        wid = data.draw(st.sampled_from(candidates))
        on_it = sorted(cid for cid, w in self.running.items() if w == wid)
        undelivered = data.draw(st.sets(st.sampled_from(on_it)) if on_it else st.just(set()))
        # What the dispatcher must do with each call it had for this worker.
        expected: dict[int, FailReason] = {}
        requeued: set[int] = set()
        for cid in self.pinned_waiting[wid]:
            expected[cid] = FailReason.SESSION_LOST  # queued for it, never delivered
        for cid in on_it:
            self.revoking.discard(cid)
            if cid in undelivered:  # it never ran there: it must not count as a run
                self.sent_count[cid] -= 1
            if cid in self.cancelled:
                self.finished[cid] = "abandoned"  # nobody waits for it: simply forgotten
            elif self.pins.get(cid) == wid:  # it can run nowhere else
                lost = cid in undelivered
                expected[cid] = FailReason.SESSION_LOST if lost else FailReason.CRASHED
            elif cid in undelivered or (
                cid in self.idempotent and self.sent_count[cid] <= self.d.max_retries
            ):
                requeued.add(cid)
            else:
                expected[cid] = FailReason.CRASHED
            del self.running[cid]
        actions = self.d.remove_worker(wid, undelivered)
        fails = [a for a in actions if isinstance(a, Fail)]
        assert {a.call.id: a.reason for a in fails} == expected
        assert len(fails) == len(expected) and all(a.worker == wid for a in fails)
        self.pool_waiting |= requeued  # back in the pool queue before anything is sent
        self.draining.discard(wid)
        self.suspended.discard(wid)
        self._apply(actions)
        assert not self.pinned_waiting[wid]

    @precondition(lambda self: bool(self.known_workers))
    @rule(data=st.data())
    def drain_worker(self, data: st.DataObject) -> None:
        """Recycling: the worker gets no new call; what it runs finishes."""
        wid = data.draw(st.sampled_from(self.known_workers))  # a dead one is a no-op
        self.d.drain_worker(wid)
        if wid in self.d.workers:
            self.draining.add(wid)

    @precondition(lambda self: bool(self.d.workers))
    @rule(data=st.data(), quiet=st.booleans())
    def heartbeat(self, data: st.DataObject, quiet: bool) -> None:
        """A worker goes quiet, or a quiet one answers again."""
        candidates = sorted(self.d.workers if quiet or not self.suspended else self.suspended)
        wid = data.draw(st.sampled_from(candidates))
        if quiet:
            self.d.suspend_worker(wid)
            self.suspended.add(wid)
        else:
            self.suspended.discard(wid)
            self._apply(self.d.resume_worker(wid))

    @rule(roll=st.integers(0, 9))
    def shed(self, roll: int) -> None:
        """The crash breaker opened (rarely: it empties the pool queue)."""
        if roll != 9:
            return
        shed = set(self.pool_waiting)
        actions = self.d.shed_queue(FailReason.UNHEALTHY)
        assert all(isinstance(a, Fail) and a.reason is FailReason.UNHEALTHY for a in actions)
        assert [a.call.id for a in actions] == sorted(shed, key=self.seq.__getitem__)
        self._apply(actions)

    @rule(roll=st.integers(0, 9))
    def close(self, roll: int) -> None:
        """The pool closes (rarely: every later submit is refused)."""
        if roll != 9:
            return
        self.d.close()
        waiting = self._waiting()
        actions = self.d.fail_queued()
        assert all(isinstance(a, Fail) and a.reason is FailReason.CLOSED for a in actions)
        assert sorted(a.call.id for a in actions) == sorted(waiting)
        self._apply(actions)

    # --- invariants ----------------------------------------------------------------------
    @invariant()
    def dispatcher_matches_the_model(self) -> None:
        d = self.d
        queue = [c.id for c in d.queue]
        assert set(queue) == self.pool_waiting and len(queue) == len(self.pool_waiting)
        for ws in d.workers.values():
            mine = [c.id for c in ws.pinned]
            assert set(mine) == self.pinned_waiting[ws.id] and len(mine) == len(set(mine))
            assert set(ws.calls) == {cid for cid, w in self.running.items() if w == ws.id}
            assert all(c.worker == ws.id for c in ws.calls.values())
            assert (ws.state is WorkerState.DRAINING) is (ws.id in self.draining)
            assert ws.suspended is (ws.id in self.suspended)
        assert not any(self.pinned_waiting[w] for w in self.known_workers if w not in d.workers)
        assert set(d.calls) == self._waiting() | set(self.running)
        for cid, call in d.calls.items():
            if cid in self.running:
                assert call.worker == self.running[cid]
                cancelled = cid in self.cancelled
                assert call.state is (CallState.ABANDONED if cancelled else CallState.SENT)
            else:
                assert call.state is CallState.QUEUED and call.worker is None
        assert d.queued == len(self._waiting()) and d.in_flight == len(self.running)

    @invariant()
    def queues_are_fifo(self) -> None:
        """Each queue is in submission order, so serving its head serves the oldest call."""
        for waiting in (self.d.queue, *(ws.pinned for ws in self.d.workers.values())):
            seqs = [c.seq for c in waiting]
            assert seqs == sorted(seqs), f"queue out of submission order: {seqs}"

    @invariant()
    def no_call_waits_beside_a_free_slot(self) -> None:
        """Work conservation: a call waits only while no worker that may run it has room.

        A pool call may run on any worker, a pinned one only on its own. "Room" is what
        ``_pick_worker`` and ``submit`` use: ``free``, a slot under ``limit`` (capacity plus
        the worker's current prefetch) on a worker that accepts calls (not draining, not
        suspended). ``free`` may be negative (see ``slots_within_limits``).
        """
        for ws in self.d.workers.values():
            if self.d.queue:
                assert ws.free <= 0, f"{ws.id} has room while the pool queue waits"
            if ws.pinned:
                assert ws.pin_free <= 0, f"{ws.id} has room while its own queue waits"

    @invariant()
    def slots_within_limits(self) -> None:
        """``_sent`` checks each Send against the worker's limit in force then. A worker may
        hold more than its *current* limit: when its calls turn out long, its prefetch
        shrinks, and calls already sent to it cannot be taken back. Then ``free`` is negative
        and it is sent nothing until its calls drop below the new limit. So the bound that
        always holds is capacity plus the pool's largest prefetch.

        The worker's state follows its calls against its capacity, not its limit (prefetched
        calls wait in the worker): BUSY at capacity, READY below, DRAINING once drained.
        """
        for ws in self.d.workers.values():
            n = len(ws.calls)
            assert 0 <= ws.prefetch <= self.d.prefetch
            assert n <= ws.capacity + self.d.prefetch
            assert ws.free == (ws.limit - n if ws.accepting else 0)
            cancelled_here = sum(1 for c in self.cancelled if self.running.get(c) == ws.id)
            assert ws.held == cancelled_here
            sent = self.sends_to.get(ws.id, 0)
            if self.max_requests is not None:
                assert ws.remaining == self.max_requests - sent
            if ws.state is not WorkerState.DRAINING:
                assert ws.state is (WorkerState.BUSY if n >= ws.capacity else WorkerState.READY)

    @invariant()
    def indexes_agree_with_a_scan(self) -> None:
        """After every step, the free-slot heap, the workers set aside for their own queue
        and the running counts agree with a scan of every worker."""
        check_indexes_against_a_scan(self.d)

    @invariant()
    def finished_exactly_once(self) -> None:
        live = set(self.d.calls)
        assert not (live & set(self.finished)), "a call is both live and finished"
        for cid in range(1, self.next_id):
            assert (cid in live) != (cid in self.finished), f"call {cid} lost"

    @invariant()
    def runs_at_most_once_unless_idempotent(self) -> None:
        for cid, n in self.sent_count.items():
            runs = 1 + self.d.max_retries if cid in self.idempotent else 1
            assert n <= runs, f"call {cid} ran {n} times"
        for cid in self.pins:
            assert self.sent_count.get(cid, 0) <= 1, f"pinned call {cid} ran twice"


TestDispatcherMachine = DispatcherMachine.TestCase
TestDispatcherMachine.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
