"""Closing a pool: refuse calls, let running ones finish, end sessions, stop the workers.

Rules (the README's promise, in this order):
1. New calls get PoolClosed. Calls still waiting in the pool's queue (never handed to a
   worker) get PoolClosed at once, whatever closes the pool: the block's end, SIGTERM or an
   error; they never start. (A worker that dies meanwhile gives its calls back as usual:
   idempotent ones may run again elsewhere; what is still queued at the end fails.)
2. Calls a worker already has may finish for ``drain_timeout`` seconds, when the block ended
   normally or on SIGTERM; not when it raised or was cancelled. Meanwhile the pool logs what
   it waits for (INFO, then every ``DRAIN_REPORT_EVERY`` seconds; WARNING if time runs out).
3. Open sessions end: each one's worker gets SESSION_END (its adapter's ``on_session_end``
   runs), then a PING. A worker answers frames in order, so its PONG means it has taken the
   SESSION_END frames; the pool waits for it at most ``SESSION_END_WAIT`` seconds, so that the
   SIGTERM of step 4 does not overtake them.
4. Every worker is stopped: SIGTERM, ``shutdown_grace``, SIGKILL (bounded).

Hurrying: a second SIGTERM, or Ctrl-C while the pool closes, ends the waits of steps 2 and 3 at
once; step 4 still runs, and it is bounded. Trio delivers Ctrl-C as a KeyboardInterrupt to
the main task wherever it waits, shielded or not; here it is caught, so the workers are
still stopped, and handed back to the caller, which raises it once the pool's nursery is
gone: it then comes out of ``open_pool`` as itself, not inside an exception group. (When it
lands in one of the pool's own tasks instead, the pool's nursery is cancelled: each worker's
supervisor then stops its worker at once, which ends the waits too, and ``open_pool`` takes
the KeyboardInterrupt out of the nursery's group.)

Closing runs once: SIGTERM's task and the block's end may both ask, and the later one waits
for the first (hurrying it if it comes from Ctrl-C).
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from typing import TYPE_CHECKING, Protocol

import trio

from .._config import STOP_MARGIN
from .._core._dispatcher import CallState
from .._shared import _frames as w

if TYPE_CHECKING:
    from .._config import PoolConfig
    from .._core._dispatcher import Action, Dispatcher
    from .._supervision._worker import Worker
    from ..telemetry._hub import Hub
    from ._sessions import SessionHost

log = logging.getLogger("snakepit_trio")

DRAIN_REPORT_EVERY = 5.0  # seconds between "still waiting for ..." lines while draining
SESSION_END_WAIT = 2.0  # longest wait for workers to take the SESSION_END of open sessions
# The PING sent after SESSION_END frames; heartbeats count their own PINGs up from 1 and
# never get near it, so its PONG can be told apart.
SESSION_END_PING = 1 << 62


class ClosingHost(Protocol):
    """What closing needs from the engine it works for (the engine imports this module)."""

    closing: bool

    @property
    def config(self) -> PoolConfig: ...
    @property
    def core(self) -> Dispatcher: ...
    @property
    def workers(self) -> dict[str, Worker]: ...
    @property
    def sessions(self) -> SessionHost: ...
    @property
    def settled(self) -> trio.Event: ...
    @property
    def terminated(self) -> trio.Event: ...
    @property
    def telemetry(self) -> Hub: ...

    def apply(self, actions: list[Action]) -> None: ...
    def check_settled(self) -> None: ...


class Closer:
    """Carries out one pool's closing (the rules above)."""

    def __init__(self, engine: ClosingHost) -> None:
        self._engine = engine
        self._started = False
        self._hurried = False
        self._patience: trio.CancelScope | None = None  # the wait a hurry ends
        self._unanswered: set[str] = set()  # workers that owe the SESSION_END_PING's PONG
        self._answered = trio.Event()  # a PONG came, or a worker went away

    @property
    def _name(self) -> str:
        return self._engine.config.name

    def hurry(self, why: str) -> None:
        """Stop waiting for running calls and sessions; stop the workers now."""
        if self._hurried:
            return
        self._hurried = True
        if self._patience is not None:
            log.warning(
                "pool %r: %s: no longer waiting for running calls; stopping its workers",
                self._name,
                why,
            )
            self._patience.cancel()

    def pong(self, worker: Worker, seq: int) -> None:
        """A PONG from ``worker`` (``Engine.note_pong``)."""
        if seq == SESSION_END_PING and worker.id in self._unanswered:
            self._unanswered.discard(worker.id)
            self._answered.set()

    def changed(self) -> None:
        """A call ended or a worker went away while closing (``Engine.check_settled``)."""
        if self._unanswered:
            self._answered.set()

    @trio.lowlevel.enable_ki_protection  # a Ctrl-C mid-step waits for our next checkpoint
    async def close(self, drain: bool, interrupted: bool) -> KeyboardInterrupt | None:
        """Close the pool; the KeyboardInterrupt that came meanwhile, if one did.

        ``drain``: let calls on workers finish (rule 2). ``interrupted``: the pool's block
        ended with a KeyboardInterrupt, which hurries a closing already under way (SIGTERM's);
        a closing it starts itself does not drain (``drain`` is False then).
        """
        if self._started:
            if interrupted:
                self.hurry("Ctrl-C")
            return await self._wait_for_first()
        self._started = True
        engine = self._engine
        engine.closing = True
        engine.core.close()
        queued = engine.core.queued
        engine.apply(engine.core.fail_queued())
        if queued:
            log.info("pool %r closing: %d queued call(s) got PoolClosed", self._name, queued)
        interrupt: KeyboardInterrupt | None = None
        try:
            if drain and not self._hurried:
                await self._drain()
            if not self._hurried:
                await self._end_sessions()
            else:
                engine.sessions.end_all()  # sent, not waited for
        except KeyboardInterrupt as exc:
            interrupt = exc
            self.hurry("Ctrl-C")
            engine.sessions.end_all()
        finally:
            self._patience = None
        interrupt = await self._stop_workers() or interrupt
        engine.apply(engine.core.fail_queued())  # what a dying worker gave back meanwhile
        engine.terminated.set()
        engine.telemetry.closed()  # its subscriptions end, after every event of the pool
        return interrupt

    async def _wait_for_first(self) -> KeyboardInterrupt | None:
        interrupt: KeyboardInterrupt | None = None
        while not self._engine.terminated.is_set():
            try:
                await self._engine.terminated.wait()
            except KeyboardInterrupt as exc:
                interrupt = interrupt or exc
                self.hurry("Ctrl-C")
        return interrupt

    # --- rule 2 ----------------------------------------------------------------------------
    async def _drain(self) -> None:
        engine = self._engine
        timeout = engine.config.drain_timeout
        start = trio.current_time()
        engine.check_settled()
        if not engine.settled.is_set():
            log.info(
                "pool %r closing: waiting up to %gs (drain_timeout) for %s",
                self._name,
                timeout,
                self._running(),
            )
        with trio.CancelScope(deadline=start + timeout) as self._patience:
            for reports in itertools.count(1):
                # Reports at whole multiples of DRAIN_REPORT_EVERY from the start (no drift);
                # one that falls on the deadline gives way to it.
                with trio.move_on_at(start + reports * DRAIN_REPORT_EVERY):
                    await engine.settled.wait()
                if engine.settled.is_set():
                    return
                waited = trio.current_time() - start
                log.info(
                    "pool %r closing: still waiting after %.0fs (%.0fs left) for %s",
                    self._name,
                    waited,
                    max(0.0, timeout - waited),
                    self._running(),
                )
        if self._patience.cancelled_caught and not self._hurried:
            log.warning(
                "pool %r: drain_timeout=%gs ran out; %s get PoolClosed as their workers stop",
                self._name,
                timeout,
                self._running(),
            )

    def _running(self) -> str:
        """What the pool still waits for: per worker, its calls' tools and how long ago the
        oldest was sent."""
        core = self._engine.core
        now = trio.current_time()
        parts = []
        total = 0
        for worker_id, slots in sorted(core.workers.items()):
            if not slots.calls:
                continue
            tools = Counter(
                call.tool + (" (its caller is gone)" if call.state is CallState.ABANDONED else "")
                for call in slots.calls.values()
            )
            total += len(slots.calls)
            worker = self._engine.workers.get(worker_id)
            where = worker_id if worker is None else f"{worker_id} (pid {worker.pid})"
            listed = ", ".join(t if n == 1 else f"{t} x{n}" for t, n in sorted(tools.items()))
            oldest = now - min(call.handle.sent_at for call in slots.calls.values())
            parts.append(f"{where}: {listed} (the oldest sent {oldest:.0f}s ago)")
        return f"{total} running call(s) on {'; '.join(parts) or 'no worker'}"

    # --- rule 3 ----------------------------------------------------------------------------
    async def _end_sessions(self) -> None:
        engine = self._engine
        ended = engine.sessions.end_all()
        workers = {r.worker for r in ended if r.worker in engine.workers}
        for worker_id in workers:
            channel = engine.workers[worker_id].channel
            if channel is not None:
                self._unanswered.add(worker_id)
                channel.send(w.ping(SESSION_END_PING))
        if not self._unanswered:
            return
        log.debug("pool %r closing: ended %d open session(s)", self._name, len(ended))
        with trio.move_on_after(SESSION_END_WAIT) as self._patience:
            while True:
                self._unanswered &= engine.workers.keys()  # a worker that died owes nothing
                if not self._unanswered:
                    return
                self._answered = trio.Event()
                await self._answered.wait()
        if not self._hurried:
            log.warning(
                "pool %r: worker(s) %s did not take the end of their sessions within %gs",
                self._name,
                ", ".join(sorted(self._unanswered)),
                SESSION_END_WAIT,
            )

    # --- rule 4 ----------------------------------------------------------------------------
    async def _stop_workers(self) -> KeyboardInterrupt | None:
        """Stop every worker: SIGTERM -> grace -> SIGKILL, through any Ctrl-C (bounded)."""
        engine = self._engine
        grace = engine.config.shutdown_grace
        interrupt: KeyboardInterrupt | None = None
        if engine.workers:
            log.info(
                "pool %r closing: stopping %d worker(s) (SIGTERM, then SIGKILL after "
                "shutdown_grace=%gs)",
                self._name,
                len(engine.workers),
                grace,
            )
        # Bounded even if a supervisor misbehaves. Repeated, because a replacement
        # (recycling) may become ready while others stop; it is told to stop as soon as it
        # registers (worker_ready).
        with trio.move_on_after(grace + STOP_MARGIN):
            while engine.workers:
                workers = list(engine.workers.values())
                for worker in workers:
                    worker.request_stop()
                for worker in workers:
                    try:
                        await worker.gone.wait()
                    except KeyboardInterrupt as exc:  # stopping goes on: it is bounded
                        interrupt = interrupt or exc
                        log.warning(
                            "pool %r: Ctrl-C: its workers are being stopped (SIGKILL after "
                            "shutdown_grace=%gs at most)",
                            self._name,
                            grace,
                        )
        return interrupt
