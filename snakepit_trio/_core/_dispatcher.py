"""The dispatcher: which call runs where, as a pure state machine (events in, actions out).

How this works:
- Callers ``submit`` calls. A call goes straight to the least-loaded worker with a free slot
  (least-loaded keeps the per-worker batches large), else waits in one FIFO queue.
- A worker runs ``capacity`` calls at once. When its calls are short, more may wait in the
  worker's own queue: a round trip costs more than a short call, and without this a worker
  idles while its next call is on the wire. How many: as many as fit in ``prefetch_budget``
  seconds of the moving-average run time (at most ``prefetch``), so a prefetched call waits
  behind at most about that much work. Calls longer than the budget are never prefetched:
  they wait in the pool's queue for whichever worker frees first (no head-of-line blocking).
- A slot is held from Send until the worker's final frame
  for that call arrives (``complete``), even when the caller has already gone: a cancelled
  call may still be running, and the worker must never be over-committed.
- ``abandon`` is the caller giving up (timeout or cancel): a queued call just leaves the
  queue; a sent call gets a SendCancel and keeps its slot until ``complete``. While a
  cancelled call still runs there (its code may ignore the cancel), its worker is *held*:
  it gets no new calls at all, so nothing piles up behind a call nobody waits for.
- A call sent to a worker may still wait there (prefetched, or behind a held slot).
  ``revoke_waiting`` takes such calls back: a Revoke asks the worker to return each call it
  has not started; ``revoked`` is its answer for one call, which then rejoins the queue in
  submission order as if it had never been sent (a call that had started just finishes).
  The shell revokes when a worker with waiting calls makes no progress (a long call turned
  up among short ones, or a cancelled call is stuck); until its next completion such a
  worker gets no prefetched calls (``stalled``).
- ``max_requests`` (per worker, given to ``add_worker``) is a hard limit: a worker is sent
  at most that many calls, except calls pinned to it (its strict sessions can run nowhere
  else); then it takes no new pool calls (``exhausted``) and the shell replaces it.
- Session affinity: a call with ``pin`` runs only on that worker; it waits in the worker's
  own queue while the worker is full, and if the worker dies it fails with SESSION_LOST
  (queued) or CRASHED (running); it is never moved. A call with ``prefer`` goes to that
  worker when it has a free slot, else it is an ordinary call. Between the pool queue and a
  worker's own queue, the older call (by submission order) goes first.
- ``remove_worker`` is a worker's death. Calls never delivered to it go back to the queue
  (they never ran), in submission order: ahead of every call submitted after them, so
  usually at the front. Delivered calls fail with CRASHED, except idempotent calls, which
  are re-queued the same way up to ``max_retries`` times (a retry budget: a call that
  crashes every worker it touches must not take the whole pool down). Abandoned calls on
  it are simply forgotten.
- ``suspend_worker`` stops new calls to a worker that went quiet (heartbeats), until
  ``resume_worker``; its running calls stay where they are.
- ``close`` refuses new submissions; queued and running calls may still finish (drain).
  ``fail_queued`` then fails whatever still waits with CLOSED.

Invariants (tested with hypothesis): a call is finished exactly once (completed, failed or
abandoned); it is on at most one worker at a time; a non-idempotent call is sent at most once;
no call is sent to a worker past its limit (capacity + its current prefetch; a worker may keep
more than a limit that shrank, and then gets nothing until it is below it again); no call is
sent to a draining or suspended worker; every queue is in submission order and a call is
never sent while an older one that worker could run still waits; no call waits while a worker
that may run it has a free slot.

Cost: a pool may have hundreds of workers, and no per-call event scans them. ``submit``,
``complete``, ``abandon`` and ``revoked`` cost O(log n) (amortized) in the number of workers
and of waiting calls, whatever the affinities, limits and holds in force:
- the workers with a free slot wait in a heap, best first (``_free_slots.py``); each change
  to a worker's calls, limit or openness refiles it there (``_reindex``), so choosing the
  least-loaded worker is a look at the heap's top;
- the workers whose own queue waits while they have room are kept aside (``_pin_ready``):
  only the worker that the event itself touched can be one, because every event that may
  give a worker room ends in ``_pump``, which serves them all;
- the queues are heaps too (``_call_queue.py``), and ``queued`` and ``in_flight`` are kept
  as running counts.
Per-worker events cost O(log n) plus O(the calls it holds) (``remove_worker``,
``revoke_waiting``); ``fail_queued`` (closing) visits every worker once.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable
from typing import Any

import attrs

from ._call_queue import CallQueue
from ._free_slots import FreeSlots
from ._worker_state import WorkerEvent, WorkerState, transition


class CallState(enum.Enum):
    QUEUED = "queued"
    SENT = "sent"
    ABANDONED = "abandoned"  # caller gone, worker still owes the final frame
    DONE = "done"


class FailReason(enum.Enum):
    CRASHED = "crashed"
    CLOSED = "closed"
    SESSION_LOST = "session_lost"  # pinned to a worker that died before it ran
    UNHEALTHY = "unhealthy"  # shed from the queue when the pool's crash breaker opened


class QueueFull(Exception):
    """submit() on a full queue."""


class DispatcherClosed(Exception):
    """submit() after close()."""


class WorkerGone(Exception):
    """submit() of a call pinned to a worker the dispatcher does not have."""


# no __weakref__ slot: nothing refers to a call weakly, and a queue of 100,000 calls holds one each
@attrs.define(eq=False, weakref_slot=False)
class Call:
    """One call as the dispatcher tracks it. ``handle`` belongs to the caller's shell."""

    id: int
    tool: str
    idempotent: bool = False
    state: CallState = CallState.QUEUED
    worker: Any = None
    attempts: int = 0
    handle: Any = None
    pin: Any = None  # run only on this worker (strict session affinity)
    prefer: Any = None  # run on this worker when it has a free slot
    seq: int = 0  # submission order, set by submit()
    revoking: bool = False  # a Revoke for it is out; the worker has not answered yet
    borrowed: bool = False  # sent beyond its worker's capacity, in a parked ancestor's slot
    waiting_in: Any = None  # the CallQueue it waits in (set by the queue itself)

    def __lt__(self, other: Call) -> bool:
        """Older: a CallQueue's heap holds the calls themselves, in submission order."""
        return self.seq < other.seq

    @property
    def revocable(self) -> bool:
        """Sent, its caller still waits, it may run elsewhere and no Revoke is out for it."""
        return self.state is CallState.SENT and self.pin is None and not self.revoking


@attrs.frozen
class Send:
    worker: Any
    call: Call


@attrs.frozen
class SendCancel:
    worker: Any
    call: Call


@attrs.frozen
class Fail:
    call: Call
    reason: FailReason
    worker: Any = None


@attrs.frozen
class Revoke:
    """Ask ``worker`` to give ``call`` back if it has not started it (see ``revoked``)."""

    worker: Any
    call: Call


Action = Send | SendCancel | Fail | Revoke


@attrs.define(eq=False)
class WorkerSlots:
    id: Any
    capacity: int
    prefetch: int = 0
    state: WorkerState = WorkerState.READY
    calls: dict[int, Call] = attrs.Factory(dict)
    pinned: CallQueue = attrs.Factory(CallQueue)  # calls that may run only here, waiting
    avg_run_time: float | None = None  # moving average of reported run times, seconds
    suspended: bool = False  # silent on heartbeats: no new calls until it answers again
    held: int = 0  # cancelled calls still running here: no new calls until they end
    remaining: int | None = None  # unpinned calls it may still be sent (max_requests)
    stalled: bool = False  # its waiting calls were revoked: no prefetch until it completes one
    completions: int = 0  # final frames so far: the shell samples it to notice a stall
    order: int = 0  # when it joined the pool: between equally loaded workers, the first wins

    @property
    def limit(self) -> int:
        return self.capacity + (0 if self.stalled else self.prefetch)

    @property
    def free(self) -> int:
        """Room for a call from the pool queue."""
        return self.limit - len(self.calls) if self.accepting else 0

    @property
    def pin_free(self) -> int:
        """Room for one of its pinned calls (max_requests does not stop those)."""
        return self.limit - len(self.calls) if self.open else 0

    @property
    def open(self) -> bool:
        return self.state is not WorkerState.DRAINING and not self.suspended and not self.held

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    @property
    def accepting(self) -> bool:
        return self.open and not self.exhausted

    def _update(self) -> None:
        state = self.state
        if state is _DRAINING:
            return
        full = len(self.calls) >= self.capacity
        if full is not (state is _BUSY):
            self.state = transition(state, _FILLED if full else _FREED)


# Read on every call (a global is found faster than an enum's member).
_BUSY, _DRAINING = WorkerState.BUSY, WorkerState.DRAINING
_FILLED, _FREED = WorkerEvent.FILLED, WorkerEvent.FREED


class Dispatcher:
    def __init__(
        self,
        *,
        max_queue: int | None = None,
        prefetch: int = 0,
        prefetch_budget: float = 0.002,
        max_retries: int = 1,
    ) -> None:
        self.max_queue = max_queue
        self.max_retries = max_retries
        self.prefetch = prefetch
        self.prefetch_budget = prefetch_budget
        self.queue = CallQueue()
        self.workers: dict[Any, WorkerSlots] = {}
        self.calls: dict[int, Call] = {}  # every unfinished call, by id
        self.closed = False
        self._seq = 0
        # Kept as workers change, so that no call scans the workers (see "Cost" above).
        self._free: FreeSlots[WorkerSlots] = FreeSlots()  # who may take a pool call
        self._pin_ready: dict[Any, WorkerSlots] = {}  # its own queue waits, and it has room
        self._in_flight = 0  # calls holding a slot, on every worker
        self._order = itertools.count()

    # --- queries -------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        """Calls waiting, in the pool queue or a worker's own (every other unfinished call
        holds a slot)."""
        return len(self.calls) - self._in_flight

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def load(self, worker: Any) -> int:
        return len(self.workers[worker].calls)

    # --- events --------------------------------------------------------------------------
    def add_worker(
        self, worker: Any, capacity: int, max_requests: int | None = None
    ) -> list[Action]:
        if worker in self.workers:
            raise ValueError(f"worker {worker!r} is already known")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if max_requests is not None and max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        ws = WorkerSlots(worker, capacity, remaining=max_requests, order=next(self._order))
        self.workers[worker] = ws
        self._reindex(ws)
        return self._pump()

    def retire_worker(self, worker: Any) -> list[Action]:
        """No new calls to ``worker`` from now on (it is over a limit); calls waiting there
        are taken back (Revoke); its running calls finish."""
        ws = self.workers.get(worker)
        if ws is None:
            return []
        if ws.state is not WorkerState.DRAINING:
            ws.state = transition(ws.state, WorkerEvent.DRAIN)
            self._reindex(ws)
        return self.revoke_waiting(worker)

    def revoke_waiting(self, worker: Any) -> list[Action]:
        """Take back every call sent to ``worker`` that may not have started.

        The host cannot tell which of its calls a worker has started, so each unpinned call
        it holds gets a Revoke; the worker answers only for those it had not started
        (``revoked``). Pinned calls stay: they can run nowhere else. Until its next
        completion the worker gets no prefetched calls, or the revoked ones would go
        straight back behind whatever holds it up.
        """
        ws = self.workers.get(worker)
        if ws is None:
            return []
        ws.stalled = True
        self._reindex(ws)
        actions: list[Action] = []
        for call in ws.calls.values():
            if call.revocable:
                call.revoking = True
                actions.append(Revoke(worker, call))
        return actions

    def drain_worker(self, worker: Any) -> None:
        """Send ``worker`` no new calls (it is being recycled); its running calls finish."""
        ws = self.workers.get(worker)
        if ws is not None:
            ws.state = transition(ws.state, WorkerEvent.DRAIN)
            self._reindex(ws)

    def suspend_worker(self, worker: Any) -> None:
        """Send ``worker`` no new calls for now (it has gone quiet); reversible."""
        ws = self.workers.get(worker)
        if ws is not None:
            ws.suspended = True
            self._reindex(ws)

    def resume_worker(self, worker: Any) -> list[Action]:
        """``worker`` answers again: it may take calls."""
        ws = self.workers.get(worker)
        if ws is None or not ws.suspended:
            return []
        ws.suspended = False
        self._reindex(ws)
        return self._pump()

    def remove_worker(self, worker: Any, undelivered: Iterable[int] = ()) -> list[Action]:
        ws = self.workers.pop(worker, None)
        if ws is None:
            return []
        self._free.drop(ws.order)
        self._pin_ready.pop(worker, None)
        self._in_flight -= len(ws.calls)
        undelivered = set(undelivered)
        actions: list[Action] = []
        requeue: list[Call] = []
        while ws.pinned:  # taken out, oldest first: a call knows the queue it waits in
            call = ws.pinned.popleft()
            self._finish(call)
            actions.append(Fail(call, FailReason.SESSION_LOST, worker))
        for call in ws.calls.values():
            call.worker = None
            if call.state is CallState.ABANDONED:
                self._finish(call)
            elif call.pin is not None:
                # It can run nowhere else: it never ran (undelivered) or may have.
                self._finish(call)
                never_ran = call.id in undelivered
                reason = FailReason.SESSION_LOST if never_ran else FailReason.CRASHED
                actions.append(Fail(call, reason, worker))
            elif call.id in undelivered:
                call.attempts -= 1  # it never reached the worker
                requeue.append(call)
            elif call.idempotent and call.attempts <= self.max_retries:
                requeue.append(call)
            else:
                self._finish(call)
                actions.append(Fail(call, FailReason.CRASHED, worker))
        if requeue:
            self._requeue(requeue)
        actions.extend(self._pump())
        return actions

    def revoked(self, call_id: int, worker: Any) -> list[Action]:
        """``worker`` gave ``call_id`` back without starting it (its answer to a Revoke, or
        to the cancel of a call it had not started): it never ran there."""
        call = self.calls.get(call_id)
        if call is None or call.worker is None or call.worker != worker:
            return []  # late: settled already
        ws = self.workers[worker]
        del ws.calls[call_id]
        self._in_flight -= 1
        ws._update()
        call.worker = None
        call.revoking = False
        call.attempts -= 1
        if ws.remaining is not None:
            ws.remaining += 1  # it never ran there
        if call.state is CallState.ABANDONED:  # nobody waits for it any more
            ws.held -= 1
            self._finish(call)
        elif call.pin is not None:
            call.state = CallState.QUEUED
            ws.pinned.append(call)  # at its place in submission order
        else:
            self._requeue([call])
        self._reindex(ws)
        return self._pump()

    def submit(self, call: Call) -> list[Action]:
        if self.closed:
            raise DispatcherClosed
        if call.id in self.calls:
            raise ValueError(f"call id {call.id} is already in use")
        self._number(call)
        if call.pin is not None:
            ws = self.workers.get(call.pin)
            if ws is None:
                raise WorkerGone
            if not ws.pinned and ws.pin_free > 0:
                self.calls[call.id] = call
                return [self._send(call, ws)]
            self._check_room()
            call.state = CallState.QUEUED
            self.calls[call.id] = call
            ws.pinned.append(call)  # it has no room (or older calls wait): not pin-ready
            return []
        preferred = self.workers.get(call.prefer)
        if (
            preferred is not None
            and not self.queue
            and len(preferred.calls) < preferred.capacity
            and preferred.free > 0
        ):
            self.calls[call.id] = call
            return [self._send(call, preferred)]
        if not self.queue:
            best = self._free.best()
            if best is not None:
                self.calls[call.id] = call
                return [self._send(call, best)]
        self._check_room()
        call.state = CallState.QUEUED
        self.calls[call.id] = call
        self.queue.append(call)
        return []

    def borrow(self, call: Call, worker: Any) -> list[Action]:
        """Send ``call`` to ``worker`` at once, beyond its capacity and past any queue: a
        nested call in the slot of an ancestor that waits for it there (see _reentry.py).
        It runs only there (a pinned call: if the worker dies, it fails with it).

        Raises:
            DispatcherClosed: the pool is closing.
            WorkerGone: ``worker`` is not a live worker.
        """
        if self.closed:
            raise DispatcherClosed
        if call.id in self.calls:
            raise ValueError(f"call id {call.id} is already in use")
        ws = self.workers.get(worker)
        if ws is None:
            raise WorkerGone
        self._number(call)
        call.pin = worker
        call.prefer = None
        call.borrowed = True
        self.calls[call.id] = call
        ws.calls[call.id] = call
        self._in_flight += 1
        ws._update()
        self._reindex(ws)  # it may have no free slot left now
        call.state = CallState.SENT
        call.worker = worker
        call.attempts += 1
        return [Send(worker, call)]

    def has_room(self, pin: Any = None) -> bool:
        """Whether ``submit`` would take a call now (pinned to ``pin``, if given): send it,
        or queue it within ``max_queue``. Bulk calls ask before each submission, so they
        never fill the queue by themselves."""
        if self.closed:
            return True  # submit raises DispatcherClosed: the caller must hear it
        if pin is not None:
            ws = self.workers.get(pin)
            if ws is None or (not ws.pinned and ws.pin_free > 0):
                return True  # sent at once (or WorkerGone: the caller must hear that too)
        elif not self.queue and self._free.best() is not None:
            return True
        return self.max_queue is None or self.queued < self.max_queue

    def _check_room(self) -> None:
        if self.max_queue is not None and self.queued >= self.max_queue:
            raise QueueFull

    def complete(self, call_id: int, worker: Any, run_time: float | None = None) -> list[Action]:
        """``worker`` sent the call's final frame (result, end or error).

        ``run_time`` is how long the call ran in the worker, when it says; it decides
        whether the worker's calls are short enough to prefetch.
        """
        call = self.calls.get(call_id)
        if call is None or call.worker is None or call.worker != worker:
            return []  # a late frame for a call already settled (e.g. after a crash)
        ws = self.workers[call.worker]
        del ws.calls[call_id]
        self._in_flight -= 1
        ws.completions += 1
        ws.stalled = False
        if call.state is CallState.ABANDONED:
            ws.held -= 1
        if run_time is not None and self.prefetch:
            avg = run_time if ws.avg_run_time is None else 0.8 * ws.avg_run_time + 0.2 * run_time
            ws.avg_run_time = avg
            ws.prefetch = min(self.prefetch, int(self.prefetch_budget / max(avg, 1e-9)))
        ws._update()
        self._reindex(ws)
        call.worker = None
        self._finish(call)
        return self._pump()

    def abandon(self, call_id: int) -> list[Action]:
        """The caller stopped waiting (timeout or cancellation)."""
        call = self.calls.get(call_id)
        if call is None:
            return []
        if call.state is CallState.QUEUED:
            ws = self.workers.get(call.pin)
            if ws is not None and call in ws.pinned:
                ws.pinned.remove(call)
                self._reindex(ws)
            else:
                self.queue.remove(call)
            self._finish(call)
            return []
        if call.state is CallState.SENT:
            call.state = CallState.ABANDONED
            ws = self.workers[call.worker]
            ws.held += 1
            self._reindex(ws)
            return [SendCancel(call.worker, call)]
        return []

    def close(self) -> None:
        self.closed = True

    def fail_queued(self) -> list[Action]:
        actions: list[Action] = []
        for waiting in (self.queue, *(ws.pinned for ws in self.workers.values())):
            while waiting:
                call = waiting.popleft()
                self._finish(call)
                actions.append(Fail(call, FailReason.CLOSED))
        self._pin_ready.clear()  # empty already (see _pump); no own queue waits now anyway
        return actions

    def shed_queue(self, reason: FailReason) -> list[Action]:
        """Fail every call in the pool queue (never sent anywhere) with ``reason``.

        Pinned calls stay: they wait for one particular live worker.
        """
        actions: list[Action] = []
        while self.queue:
            call = self.queue.popleft()
            self._finish(call)
            actions.append(Fail(call, reason))
        return actions

    # --- internals -----------------------------------------------------------------------
    def _number(self, call: Call) -> None:
        """Give ``call`` its place in submission order: a ``seq`` above every earlier one.
        Its id, when that is (ids are usually handed out in submission order): then the
        call holds one int, not two (an int above 256 is an object of its own, 32 bytes
        for each of 100,000 waiting calls)."""
        self._seq = call.id if call.id > self._seq else self._seq + 1
        call.seq = self._seq

    def _requeue(self, calls: list[Call]) -> None:
        # Back in submission order: ahead of every call submitted after them, behind older
        # ones already put back (the queue orders by seq), which _pump relies on when it
        # compares only the heads of the queues.
        for call in calls:
            call.state = CallState.QUEUED
            call.revoking = False
            self.queue.append(call)

    def _finish(self, call: Call) -> None:
        call.state = CallState.DONE
        self.calls.pop(call.id, None)

    def _reindex(self, ws: WorkerSlots) -> None:
        """File ``ws`` where its room says now. Every change to a worker's calls, limit,
        openness or own queue ends here, so the indexes never need a scan to be right."""
        # ``free`` and ``pin_free`` inlined: this runs twice per call.
        n = len(ws.calls)
        room = ws.capacity - n + (0 if ws.stalled else ws.prefetch)
        if room > 0 and not ws.held and not ws.suspended and ws.state is not _DRAINING:
            if ws.remaining is None or ws.remaining > 0:
                # An idle slot anywhere beats a prefetch slot: a call queued in a worker
                # waits behind its running calls, whose length is only an average guess.
                self._free.put(ws.order, ws, idle=n < ws.capacity, free=room)
            else:
                self._free.drop(ws.order)
            if ws.pinned:
                self._pin_ready[ws.id] = ws
                return
        else:
            self._free.drop(ws.order)
        self._pin_ready.pop(ws.id, None)

    def _send(self, call: Call, ws: WorkerSlots) -> Send:
        ws.calls[call.id] = call
        self._in_flight += 1
        ws._update()
        if ws.remaining is not None:
            ws.remaining -= 1
        self._reindex(ws)
        call.state = CallState.SENT
        call.worker = ws.id
        call.attempts += 1
        return Send(ws.id, call)

    def _pump(self) -> list[Action]:
        actions: list[Action] = []
        ready, queue = self._pin_ready, self.queue
        while ready or queue:
            # The oldest waiting call that some worker can take now. ``ready`` holds at
            # most the worker this event touched (each event that may give a worker room
            # ends here, and this loop leaves none there), so min() sees one worker.
            waiting: CallQueue | None = None
            target = None
            if ready:
                target = min(ready.values(), key=_oldest_waiting)
                waiting = target.pinned
            if queue and (waiting is None or queue.first().seq < waiting.first().seq):
                best = self._free.best()
                if best is not None:
                    waiting, target = queue, best
            if waiting is None or target is None:
                break
            actions.append(self._send(waiting.popleft(), target))
        return actions


def _oldest_waiting(ws: WorkerSlots) -> int:
    seq: int = ws.pinned.first().seq
    return seq
