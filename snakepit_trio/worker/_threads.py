"""Threads that run sync (non-streaming) tools, handing results back to the loop in batches.

Why not ``loop.run_in_executor``: that costs an asyncio Task, a Future and one loop wake-up
per call. Here ``capacity`` threads take calls from one FIFO queue back to back, each result
is turned into its frame in the thread, and finished calls cross back to the loop together:
one ``call_soon_threadsafe`` per batch, issued only when the done list was empty.

Only calls that hold a slot (_slots.py) reach these threads, so ``capacity`` threads are
always enough. A thread that finishes a call gives its slot back itself (``release``), and
when the call that gets it is a sync one, runs it at once: prefetched sync calls start the
moment the previous one returns, without a trip through the loop.

A thread never dies of a call: the final frame is built by a function that never raises
(``Runtime._outcome_frame``), and a call a CANCEL withdrew before it began is skipped (its slot
goes on to the next call; see _claim.py).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

Done = tuple[Any, list[Any]]  # (RunningCall, its final frame)
# Builds a call's final frame from (call, value, error, run time); never raises.
Finish = Callable[[Any, Any, BaseException | None, float], list[Any]]
# Gives a finished call's slot back; returns the sync call to run next in this thread, if any.
Release = Callable[[], Any | None]
# Claims a call as its runner begins (QUEUED -> RUNNING); False if a CANCEL withdrew it.
Claim = Callable[[Any], bool]


class ToolThreads:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        capacity: int,
        finish: Finish,
        on_done: Callable[[list[Done]], None],
        claim: Claim,
        release: Release,
    ) -> None:
        self._loop = loop
        self._finish = finish
        self._on_done = on_done
        self._claim = claim
        self._release = release
        self._jobs: queue.SimpleQueue[Any | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._done: list[Done] = []
        self._threads = [
            threading.Thread(target=self._work, name=f"snakepit-tool-{i}", daemon=True)
            for i in range(capacity)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Any) -> None:
        """Run ``call`` (it holds a slot) in the next free tool thread."""
        self._jobs.put(call)

    def run_extra(self, call: Any) -> None:
        """Run one call now on a thread of its own, beyond capacity (a borrowed call: every
        tool thread may be blocked waiting for it)."""
        threading.Thread(
            target=self._run_one, args=(call,), name="snakepit-tool-borrowed", daemon=True
        ).start()

    def close(self) -> None:
        """Let the threads exit after the calls already queued (they are daemons: a tool
        stuck forever cannot hold the process open)."""
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while (call := self._jobs.get()) is not None:
            while call is not None:
                if not self._run_one(call):
                    return
                call = self._release()

    def _run_one(self, call: Any) -> bool:
        """Run ``call`` and hand its frame to the loop; False once the loop is closed."""
        done = run_job(call, self._finish, self._claim)
        if done is None:
            return True  # withdrawn: the loop has answered for it
        with self._lock:
            self._done.append(done)
            first = len(self._done) == 1
        if first:
            try:
                self._loop.call_soon_threadsafe(self._flush)
            except RuntimeError:  # the loop is closed: the process is exiting
                return False
        return True

    def _flush(self) -> None:
        with self._lock:
            done, self._done = self._done, []
        self._on_done(done)


def run_job(call: Any, finish: Finish, claim: Claim) -> Done | None:
    """Run one sync tool call, which holds its slot, to its final frame (its errors become
    the frame). Its arguments are dropped before the frame leaves: views of shared memory
    among them are reported unmapped before this result reaches the host.

    Returns None, running nothing, when a CANCEL withdrew the call first (the loop answered).
    """
    args: dict[str, Any] = call.args
    if not claim(call):
        args.clear()
        return None
    value: Any = None
    error: BaseException | None = None
    started = time.perf_counter()
    gate = call.gate
    # Cancelled between its claim and now, or while it waited for its tool's lock.
    if call.cancel_requested or (gate is not None and not gate.enter(call)):
        error = asyncio.CancelledError()
    else:
        try:
            value = call.info.fn(**args)
        except BaseException as exc:  # reported to the host, never raised here
            error = exc
        finally:
            if gate is not None:
                gate.leave()
    frame = finish(call, value, error, time.perf_counter() - started)
    args.clear()
    return call, frame
