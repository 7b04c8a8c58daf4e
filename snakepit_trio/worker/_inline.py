"""Tools run on the event loop itself, for a worker that lives in the host's own thread.

``snakepit_trio.testing`` runs workers in memory, on an asyncio loop stepped by Trio under a
virtual clock. Threads would break that clock (while a thread works, every task looks idle,
and the clock jumps), so there sync tools run as loop callbacks, one at a time in arrival
order, and sync generators advance one item per callback while they have credit. These
classes have the interface of ``ToolThreads`` and ``GeneratorPump``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ._genpump import Outcome
from ._threads import Claim, Done, Finish, Release, run_job


class InlineTools:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
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

    def submit(self, call: Any) -> None:
        self._loop.call_soon(self._run, call, True)

    def run_extra(self, call: Any) -> None:
        # No capacity to go beyond: calls run one after another. It holds no slot.
        self._loop.call_soon(self._run, call, False)

    def close(self) -> None:
        pass  # nothing runs between callbacks

    def _run(self, call: Any, holds_slot: bool) -> None:
        done = run_job(call, self._finish, self._claim)
        if done is not None:  # else a CANCEL withdrew it before this callback ran
            self._on_done([done])
        if holds_slot:
            following = self._release()
            if following is not None:
                self.submit(following)


class InlinePump:
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
        self._credit = credit
        self._cancelled = False
        self._parked = False
        self.done: asyncio.Future[Outcome] = loop.create_future()

    def start(self) -> None:
        self._loop.call_soon(self._step)

    def add_credit(self, n: int) -> None:
        self._credit += n
        self._unpark()

    def cancel(self) -> None:
        self._cancelled = True
        self._unpark()

    def _unpark(self) -> None:
        if self._parked:
            self._parked = False
            self._loop.call_soon(self._step)

    def _step(self) -> None:
        if self.done.done():
            return
        if self._cancelled:
            self._close(False, None)
            return
        if self._credit <= 0:
            self._parked = True
            return
        self._credit -= 1
        try:
            item = next(self._gen)
        except StopIteration:
            self._close(True, None)
            return
        except BaseException as exc:  # the tool's error, reported after its chunks
            self._close(False, exc)
            return
        self._emit([item])
        self._loop.call_soon(self._step)

    def _close(self, finished: bool, error: BaseException | None) -> None:
        try:
            self._gen.close()  # its `finally` runs, also on cancel
        except BaseException as exc:
            error = error or exc
        self.done.set_result((finished, error))
