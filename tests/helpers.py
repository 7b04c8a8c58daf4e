"""Test helpers."""

from __future__ import annotations

from collections.abc import Callable

import trio


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds, failing the test after ``timeout`` seconds.

    The pool's state changes on events in other processes; this re-checks it after each
    scheduling round and is always bounded, so a broken pool fails fast, never hangs.
    """
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.002)
