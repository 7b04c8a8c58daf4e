"""Threads that run sync (non-streaming) tools, handing results back to the loop in batches.

Why not ``loop.run_in_executor``: that costs an asyncio Task, a Future and one loop wake-up
per call. Here ``capacity`` threads take calls from one FIFO queue back to back (prefetched
calls start the moment the previous one returns), each result is turned into its frame in the
thread, and finished calls cross back to the loop together: one ``call_soon_threadsafe`` per
batch, issued only when the done list was empty.

A thread never dies of a call: the final frame is built by a function that never raises
(``Runtime._outcome_frame``), and a call a CANCEL withdrew while it waited is skipped
(see _claim.py).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ._claim import QUEUED, RUNNING

Job = tuple[Any, dict[str, Any]]  # (RunningCall, keyword arguments)
Done = tuple[Any, list[Any]]  # (RunningCall, its final frame)
# Builds a call's final frame from (call, value, error, run time); never raises.
Finish = Callable[[Any, Any, BaseException | None, float], list[Any]]


class ToolThreads:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        capacity: int,
        finish: Finish,
        on_done: Callable[[list[Done]], None],
        claims: threading.Lock,
    ) -> None:
        self._loop = loop
        self._finish = finish
        self._on_done = on_done
        self._claims = claims
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._done: list[Done] = []
        self._threads = [
            threading.Thread(target=self._work, name=f"snakepit-tool-{i}", daemon=True)
            for i in range(capacity)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, call: Any, args: dict[str, Any]) -> None:
        self._jobs.put((call, args))

    def run_extra(self, call: Any, args: dict[str, Any]) -> None:
        """Run one call now on a thread of its own, beyond capacity (a borrowed call: every
        tool thread may be blocked waiting for it)."""
        threading.Thread(
            target=self._run_one, args=((call, args),), name="snakepit-tool-borrowed", daemon=True
        ).start()

    def close(self) -> None:
        """Let the threads exit after the calls already queued (they are daemons: a tool
        stuck forever cannot hold the process open)."""
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if not self._run_one(job):
                return

    def _run_one(self, job: Job) -> bool:
        """Run ``job`` and hand its frame to the loop; False once the loop is closed."""
        done = run_job(job, self._finish, self._claims)
        # The arguments (and the result) are gone now: views of shared memory among them
        # are reported unmapped before this result reaches the host.
        del job
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


def run_job(job: Job, finish: Finish, claims: threading.Lock) -> Done | None:
    """Run one sync tool call to its final frame (its errors become the frame).

    Returns None, running nothing, when a CANCEL withdrew the call first (the loop answered).
    """
    call, args = job
    with claims:
        claimed = call.state == QUEUED
        if claimed:
            call.state = RUNNING
    if not claimed:
        args.clear()
        return None
    value: Any = None
    error: BaseException | None = None
    started = time.perf_counter()
    if call.cancel_requested:  # cancelled between its claim and now
        error = asyncio.CancelledError()
    else:
        try:
            value = call.info.fn(**args)
        except BaseException as exc:  # reported to the host, never raised here
            error = exc
    frame = finish(call, value, error, time.perf_counter() - started)
    args.clear()
    return call, frame
