"""Core layer: calls, host tools, nested calls, cancels and crashes never deadlock.

A hypothesis state machine drives the real dispatcher with ``_core/_reentry.py`` placing
every nested call, as the engine does. A running call may enter a host tool (it is parked:
it keeps its slot); a parked call's host tool may make one nested call at a time, which the
rules place (ordinary, borrowed or refused); calls complete, are cancelled (their host tools
are cancelled, and with them their nested calls) and workers crash (their calls' host tools
likewise). After any sequence, letting everything run on must finish every call: a call that
could only wait for itself would be left over, and the test names it.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from snakepit_trio._core._dispatcher import (
    Call,
    CallState,
    Dispatcher,
    Fail,
    WorkerGone,
)
from snakepit_trio._core._reentry import Borrow, Refuse, place_nested, views_of

MAX_DEPTH = 3


class Machine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = Dispatcher(prefetch=0, max_retries=0)
        self.ids = itertools.count(1)
        self.worker_ids = itertools.count(1)
        self.parked: set[int] = set()  # calls waiting in a host tool
        self.child: dict[int, int] = {}  # parked call -> its nested call, while one runs
        self.parent: dict[int, int] = {}  # nested call -> the call whose host tool made it
        self.ancestors: dict[int, tuple[int, ...]] = {}  # call -> its ancestors, outermost first
        self.calls: dict[int, Call] = {}
        self.refused = 0
        self.borrowed = 0

    # --- helpers ---------------------------------------------------------------------------
    def live(self, call_id: int) -> bool:
        return call_id in self.core.calls

    def running(self) -> list[int]:
        return sorted(
            c.id
            for c in self.core.calls.values()
            if c.state in (CallState.SENT, CallState.ABANDONED)
        )

    def apply(self, actions: list[Any]) -> None:
        for action in actions:
            if type(action) is Fail:
                self.ended(action.call.id)

    def ended(self, call_id: int) -> None:
        """A call is over: its host tool (if parked) is cancelled, with its nested call."""
        self.parked.discard(call_id)
        child = self.child.pop(call_id, None)
        if child is not None and self.live(child):
            self.cancel_call(child)
        parent = self.parent.get(call_id)
        if parent is not None and self.child.get(parent) == call_id:
            del self.child[parent]  # its host tool gets the nested call's outcome

    def cancel_call(self, call_id: int) -> None:
        self.apply(self.core.abandon(call_id))
        if not self.live(call_id):
            self.ended(call_id)
        else:  # sent: its host tool is cancelled now; the call ends when the worker says
            self.parked.discard(call_id)
            child = self.child.pop(call_id, None)
            if child is not None and self.live(child):
                self.cancel_call(child)

    # --- rules -----------------------------------------------------------------------------
    @initialize(
        capacities=st.lists(st.integers(1, 2), min_size=1, max_size=3),
        calls=st.integers(1, 4),
    )
    def start(self, capacities: list[int], calls: int) -> None:
        for capacity in capacities:
            self.apply(self.core.add_worker(f"w{next(self.worker_ids)}", capacity))
        for _ in range(calls):  # running from the start: more of the steps nest
            call = Call(next(self.ids), "t")
            self.calls[call.id] = call
            self.ancestors[call.id] = ()
            self.apply(self.core.submit(call))

    @rule(pinned=st.booleans(), data=st.data())
    def submit(self, pinned: bool, data: st.DataObject) -> None:
        call = Call(next(self.ids), "t")
        if pinned and self.core.workers:
            call.pin = data.draw(st.sampled_from(sorted(self.core.workers)))
        self.calls[call.id] = call
        self.ancestors[call.id] = ()
        self.apply(self.core.submit(call))

    @precondition(lambda self: any(c not in self.parked for c in self.running()))
    @rule(data=st.data())
    def enter_host_tool(self, data: st.DataObject) -> None:
        candidates = [
            c
            for c in self.running()
            if c not in self.parked and self.calls[c].state is CallState.SENT
        ]
        if candidates:
            self.parked.add(data.draw(st.sampled_from(candidates)))

    @precondition(lambda self: any(c not in self.child for c in self.parked))
    @rule(pinned=st.booleans(), data=st.data())
    def nested_call(self, pinned: bool, data: st.DataObject) -> None:
        parent = data.draw(st.sampled_from(sorted(c for c in self.parked if c not in self.child)))
        chain = (*self.ancestors[parent], parent)
        call = Call(next(self.ids), "t")
        if pinned and self.core.workers:
            call.pin = data.draw(st.sampled_from(sorted(self.core.workers)))
        ancestor_workers = [self.calls[a].worker for a in chain]
        placement = place_nested(
            len(chain),
            MAX_DEPTH,
            views_of(self.core.workers, self.parked, chain, call.pin),
            ancestor_workers,
        )
        event(f"nested call: {type(placement).__name__.lower()}")
        if type(placement) is Refuse:
            self.refused += 1
            return  # raised in the host tool at once; its parent carries on
        self.calls[call.id] = call
        self.ancestors[call.id] = chain
        self.parent[call.id] = parent
        self.child[parent] = call.id
        try:
            if type(placement) is Borrow:
                self.borrowed += 1
                actions = self.core.borrow(call, placement.worker)
            else:
                actions = self.core.submit(call)
        except WorkerGone:  # a strict session whose worker is gone: SessionLost at once
            self.ended(call.id)
            return
        self.apply(actions)

    @precondition(lambda self: any(c not in self.child for c in self.parked))
    @rule(data=st.data())
    def host_tool_returns(self, data: st.DataObject) -> None:
        self.parked.discard(
            data.draw(st.sampled_from(sorted(c for c in self.parked if c not in self.child)))
        )

    @precondition(lambda self: any(c not in self.parked for c in self.running()))
    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from([c for c in self.running() if c not in self.parked]))
        worker = self.calls[call_id].worker
        self.apply(self.core.complete(call_id, worker))
        self.ended(call_id)

    @precondition(lambda self: bool(self.core.calls))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self.cancel_call(data.draw(st.sampled_from(sorted(self.core.calls))))

    @precondition(lambda self: bool(self.core.workers))
    @rule(data=st.data(), replace=st.booleans())
    def crash(self, data: st.DataObject, replace: bool) -> None:
        worker = data.draw(st.sampled_from(sorted(self.core.workers)))
        on_it = list(self.core.workers[worker].calls)
        self.apply(self.core.remove_worker(worker))
        for call_id in on_it:
            if not self.live(call_id):
                self.ended(call_id)
        if replace:
            self.apply(self.core.add_worker(f"w{next(self.worker_ids)}", 1))

    # --- checks ----------------------------------------------------------------------------
    @invariant()
    def the_dispatchers_counts_agree_with_its_tables(self) -> None:
        core = self.core
        assert core.in_flight == sum(len(ws.calls) for ws in core.workers.values())
        assert core.queued == len(core.queue) + sum(len(ws.pinned) for ws in core.workers.values())

    @invariant()
    def borrowed_calls_run_beside_a_parked_ancestor(self) -> None:
        for call in self.core.calls.values():
            if call.borrowed and call.state is CallState.SENT:
                chain = self.ancestors[call.id]
                assert any(self.calls[a].worker == call.worker for a in chain)

    def teardown(self) -> None:
        """Let everything run on: host tools return once their nested call ended, running
        calls complete. Whatever is left could only have waited for itself."""
        if not self.core.workers:
            self.apply(self.core.add_worker("last", 1))  # a replacement comes
        for _ in range(10_000):
            free = [c for c in self.parked if c not in self.child]
            for call_id in free:
                self.parked.discard(call_id)
            runnable = [c for c in self.running() if c not in self.parked]
            for call_id in runnable:
                self.apply(self.core.complete(call_id, self.calls[call_id].worker))
                self.ended(call_id)
            if not free and not runnable:
                break
        waiting = {
            c.id: (c.state.name, c.worker, self.ancestors.get(c.id))
            for c in self.core.calls.values()
        }
        # Calls pinned to a worker that died are failed by the dispatcher, never left: so
        # anything here waits for a slot that only its own chain could free.
        assert not waiting, f"calls that could only wait for themselves: {waiting}"


TestReentryMachine = Machine.TestCase
TestReentryMachine.settings = settings(max_examples=400, stateful_step_count=40, deadline=None)
