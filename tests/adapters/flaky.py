"""Tools that fail, crash, block and count, for the retry, breaker and bulk-call tests.

Workers come and go (a crash ends one), so what must outlive them is kept in files the
test names: a counter of calls, a gauge of calls running at once, a log of what happened.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from snakepit_trio.worker import Adapter, ToolContext, tool


def bump(path: str, by: int = 1) -> tuple[int, int]:
    """Add ``by`` to the count in ``path`` (and keep its peak), under a lock: (count, peak)."""
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        now, peak = (int(x) for x in (f.read().split() or ["0", "0"]))
        now += by
        peak = max(peak, now)
        f.seek(0)
        f.truncate()
        f.write(f"{now} {peak}")
        return now, peak


def note(path: str, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


class Flaky(Adapter):
    @tool
    def ok(self, value: object = None) -> object:
        return value

    @tool
    def crash_first(self, path: str, crashes: int) -> int:
        """The worker exits during the first ``crashes`` calls; then the call count."""
        count, _ = bump(path)
        if count <= crashes:
            os._exit(3)
        return count

    @tool
    def fail_first(self, path: str, failures: int) -> int:
        """Raises ConnectionError for the first ``failures`` calls; then the call count."""
        count, _ = bump(path)
        if count <= failures:
            raise ConnectionError(f"failure {count} of {failures}")
        return count

    @tool
    def block(self, path: str, ctx: ToolContext) -> str:
        """Runs until the file at ``path`` exists (or the call is cancelled)."""
        while not os.path.exists(path) and not ctx.cancelled:
            time.sleep(0.002)
        return "cancelled" if ctx.cancelled else "released"

    @tool
    def gauge(self, gauge: str, value: object, seconds: float = 0.01) -> object:
        """Counts the calls running at once (the file's peak) and takes ``seconds``."""
        bump(gauge)
        try:
            time.sleep(seconds)
        finally:
            bump(gauge, -1)
        return value

    @tool
    def square(self, x: int) -> int:
        if x < 0:
            raise ValueError(f"negative: {x}")
        return x * x

    @tool
    def logged(self, log: str, i: int, ctx: ToolContext) -> int:
        """Logs "started i", runs until cancelled or ``log``.release exists, logs how it ended."""
        note(log, f"started {i}")
        release = Path(log + ".release")
        while not release.exists() and not ctx.cancelled:
            time.sleep(0.002)
        note(log, f"{'cancelled' if ctx.cancelled else 'finished'} {i}")
        return i

    @tool
    def noted(
        self,
        log: str,
        i: int,
        ctx: ToolContext,
        seconds: float = 0.0,
        fail: bool = False,
        hold: bool = False,
    ) -> int:
        """Notes "ran i pid call" in ``log`` (a chunk's items share their call), takes
        ``seconds``, raises ValueError with ``fail``; with ``hold``, runs until cancelled
        or ``log``.release exists and notes "cancelled i" when cancelled. Returns ``i``."""
        note(log, f"ran {i} {os.getpid()} {ctx.request_id}")
        time.sleep(seconds)
        if fail:
            raise ValueError(f"item {i} fails")
        release = Path(log + ".release")
        while hold and not release.exists() and not ctx.cancelled:
            time.sleep(0.002)
        if hold and ctx.cancelled:
            note(log, f"cancelled {i}")
        return i

    @tool
    def release_wait(self, value: object, path: str | None = None) -> object:
        """Returns ``value``; with a ``path``, only once that file exists."""
        while path is not None and not os.path.exists(path):
            time.sleep(0.002)
        return value

    @tool
    def fail_once_started(self, log: str, n: int) -> None:
        """Raises ValueError once ``log`` holds ``n`` "started" lines."""
        while _started(log) < n:
            time.sleep(0.002)
        raise ValueError(f"{n} calls started")

    @tool
    def pid(self) -> int:
        return os.getpid()


def _started(log: str) -> int:
    try:
        with open(log) as f:
            return sum(1 for line in f if line.startswith("started"))
    except FileNotFoundError:
        return 0
