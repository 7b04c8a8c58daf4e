"""The crash breaker: after too many worker crashes in a window, calls fail fast.

How this works: every crash (a worker that died unasked, or a replacement that failed to
start) is recorded with its time. ``threshold`` crashes within ``window`` seconds open the
breaker: calls are refused at once, because each would most likely crash another worker or
wait for workers that cannot start. ``probe_after`` seconds later the breaker is half-open:
one call (the probe) is let through. An answer from a worker closes the breaker; a crash
while half-open opens it again for another ``probe_after``. A probe that ends without an
answer (cancelled, timed out) lets the next call probe.

Pure: times are passed in, so the rules are tested without clocks or processes.
"""

from __future__ import annotations

import enum
from collections import deque

import attrs


class BreakerState(enum.Enum):
    CLOSED = "healthy"
    OPEN = "unhealthy"
    HALF_OPEN = "probing"


@attrs.define
class CrashBreaker:
    threshold: int | None  # None: never opens
    window: float
    probe_after: float
    state: BreakerState = BreakerState.CLOSED
    opened_at: float = 0.0
    probe: int | None = None  # the id of the call probing, while half-open
    last_cause: str = ""
    crashes: deque[float] = attrs.Factory(deque)

    def record_crash(self, now: float, cause: str) -> bool:
        """Note a crash at ``now``; True if this opened the breaker."""
        self.last_cause = cause
        if self.threshold is None:
            return False
        self.crashes.append(now)
        while self.crashes and self.crashes[0] <= now - self.window:
            self.crashes.popleft()
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and len(self.crashes) >= self.threshold
        ):
            self._open(now)
            return True
        if self.state is BreakerState.OPEN:
            self.opened_at = now  # still crashing: the next probe waits from the last crash
        return False

    def admit(self, now: float, call_id: int) -> bool:
        """May call ``call_id`` run? While half-open, the first call admitted is the probe."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.probe_after:
            self.state = BreakerState.HALF_OPEN
            self.probe = None
        if self.state is BreakerState.HALF_OPEN and self.probe is None:
            self.probe = call_id
            return True
        return False

    def answered(self, call_id: int) -> None:
        """A worker answered ``call_id`` (a result or the tool's own error)."""
        if self.state is BreakerState.HALF_OPEN and call_id == self.probe:
            self.state = BreakerState.CLOSED
            self.probe = None
            self.crashes.clear()

    def gave_up(self, call_id: int) -> None:
        """``call_id`` ended without an answer that proves anything (cancelled, timed out)."""
        if self.state is BreakerState.HALF_OPEN and call_id == self.probe:
            self.probe = None

    def retry_in(self, now: float) -> float:
        """Seconds until a probe may run (0 while half-open)."""
        if self.state is BreakerState.OPEN:
            return max(0.0, self.probe_after - (now - self.opened_at))
        return 0.0

    def _open(self, now: float) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = now
        self.probe = None
