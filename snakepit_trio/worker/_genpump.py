"""Runs a sync generator tool in a thread for as long as its stream has credit.

Why: one thread hop per chunk caps a sync generator at a few thousand chunks/s. Here the
generator runs in one thread, pausing on a condition when its credit is spent, and the chunks
it produces reach the event loop in bursts: one ``call_soon_threadsafe`` per burst, issued
only when the pending list was empty. Each chunk is handed over as soon as it exists, so a
generator that crashes the process has already delivered everything it yielded before.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

Outcome = tuple[bool, BaseException | None]  # (generator finished, error it raised)


class GeneratorPump:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        gen: Any,
        credit: int,
        emit: Callable[[list[Any]], None],
    ) -> None:
        self._loop = loop
        self._gen = gen
        self._emit = emit
        self._cond = threading.Condition()
        self._credit = credit
        self._cancelled = False
        self._lock = threading.Lock()
        self._items: list[Any] = []
        self.done: asyncio.Future[Outcome] = loop.create_future()

    # --- loop side -------------------------------------------------------------------
    def add_credit(self, n: int) -> None:
        with self._cond:
            self._credit += n
            self._cond.notify()

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify()

    def _flush(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        if items:
            self._emit(items)

    def _finish(self, outcome: Outcome) -> None:
        self._flush()
        if not self.done.done():
            self.done.set_result(outcome)

    # --- the generator's thread ------------------------------------------------------
    def run(self) -> None:
        finished, error = False, None
        try:
            while not finished:
                with self._cond:
                    while self._credit <= 0 and not self._cancelled:
                        self._cond.wait()
                    if self._cancelled:
                        break
                    # All the credit there is, taken at once: the condition is not taken
                    # again until it is spent (a cancel is seen between items all the same).
                    take, self._credit = self._credit, 0
                for _ in range(take):
                    if self._cancelled:
                        break
                    try:
                        item = next(self._gen)
                    except StopIteration:
                        finished = True
                        break
                    with self._lock:
                        self._items.append(item)
                        first = len(self._items) == 1
                    if first:
                        self._loop.call_soon_threadsafe(self._flush)
        except BaseException as exc:  # the tool's error, reported after its chunks
            error = exc
        finally:
            try:
                self._gen.close()  # its `finally` runs, also on cancel
            except BaseException as exc:
                error = error or exc
            self._loop.call_soon_threadsafe(self._finish, (finished, error))
