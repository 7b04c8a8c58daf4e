"""A circuit breaker for calls: it opens after failures, probes, and closes again.

How this works:
- CLOSED: every call is admitted. Each failure is counted and each success clears the count;
  with a ``window``, failures older than that many seconds drop out. ``threshold`` counted
  failures open the circuit.
- OPEN: no call is admitted, until ``reset_timeout`` seconds after it opened; then the
  circuit is HALF_OPEN (the move happens when the time is next looked at: ``poll``).
- HALF_OPEN: at most ``probes`` calls (probes) run at a time. ``probes`` successes close
  the circuit; one failure opens it again for another ``reset_timeout``. A probe that ends
  with no verdict (cancelled, or an error that says nothing about the service) gives its
  turn to the next call.
- Every admitted call gets a ``Ticket`` naming the circuit's generation (it grows at each
  move). An outcome from an older generation is ignored: a call admitted while closed that
  fails after the circuit opened neither reopens it later nor counts as a probe.

Moves are a table (``TRANSITIONS``); any other move raises CircuitError naming the state
and the event. Pure: times are passed in, so the rules are tested without clocks.
"""

from __future__ import annotations

import enum
from collections import deque

import attrs


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitEvent(enum.Enum):
    TRIPPED = "tripped"  # failures reached the threshold, or a probe failed
    RESET_TIMEOUT = "reset_timeout"  # reset_timeout passed since it opened
    PROBES_PASSED = "probes_passed"  # enough probes succeeded


class CircuitError(RuntimeError):
    """An illegal move: a bug in the breaker, never the caller's fault."""


S, E = CircuitState, CircuitEvent

TRANSITIONS: dict[tuple[CircuitState, CircuitEvent], CircuitState] = {
    (S.CLOSED, E.TRIPPED): S.OPEN,
    (S.OPEN, E.RESET_TIMEOUT): S.HALF_OPEN,
    (S.HALF_OPEN, E.TRIPPED): S.OPEN,
    (S.HALF_OPEN, E.PROBES_PASSED): S.CLOSED,
}


@attrs.frozen
class Ticket:
    """An admitted call: which generation admitted it, and whether it is a probe."""

    generation: int
    probe: bool


@attrs.define
class Circuit:
    threshold: int
    reset_timeout: float
    probes: int
    window: float | None = None  # None: failures count however far apart
    state: CircuitState = CircuitState.CLOSED
    generation: int = 0
    opened_at: float = 0.0
    failures: deque[float] = attrs.Factory(deque)  # times of counted failures (CLOSED)
    probing: int = 0  # probes running (HALF_OPEN)
    passed: int = 0  # probes that succeeded (HALF_OPEN)

    def poll(self, now: float) -> CircuitState:
        """The state at ``now`` (an open circuit whose reset_timeout passed is half-open)."""
        if self.state is S.OPEN and now - self.opened_at >= self.reset_timeout:
            self._move(E.RESET_TIMEOUT, now)
        return self.state

    def admit(self, now: float) -> Ticket | None:
        """A ticket for a call that may run now, or None: refused (see ``retry_in``)."""
        state = self.poll(now)
        if state is S.CLOSED:
            return Ticket(self.generation, probe=False)
        if state is S.HALF_OPEN and self.probing < self.probes - self.passed:
            self.probing += 1
            return Ticket(self.generation, probe=True)
        return None

    def succeeded(self, ticket: Ticket, now: float) -> None:
        """The call of ``ticket`` succeeded."""
        if ticket.generation != self.generation:
            return
        if self.state is S.CLOSED:
            self.failures.clear()
        elif self.state is S.HALF_OPEN and ticket.probe:
            self.probing -= 1
            self.passed += 1
            if self.passed >= self.probes:
                self._move(E.PROBES_PASSED, now)

    def failed(self, ticket: Ticket, now: float) -> None:
        """The call of ``ticket`` failed (with an error the breaker counts)."""
        if ticket.generation != self.generation:
            return
        if self.state is S.CLOSED:
            if self.window is not None:
                while self.failures and self.failures[0] <= now - self.window:
                    self.failures.popleft()
            self.failures.append(now)
            if len(self.failures) >= self.threshold:
                self._move(E.TRIPPED, now)
        elif self.state is S.HALF_OPEN and ticket.probe:
            self._move(E.TRIPPED, now)

    def abstained(self, ticket: Ticket) -> None:
        """The call of ``ticket`` ended with no verdict: a probe gives its turn back."""
        if ticket.generation == self.generation and self.state is S.HALF_OPEN and ticket.probe:
            self.probing -= 1

    def counted(self, now: float) -> int:
        """Failures that count towards opening it at ``now`` (while closed)."""
        if self.state is not S.CLOSED:
            return 0
        w = self.window
        return sum(1 for t in self.failures if w is None or t > now - w)

    def retry_in(self, now: float) -> float:
        """Seconds until a call may be admitted: until half-open while open, else 0."""
        if self.poll(now) is S.OPEN:
            return max(0.0, self.reset_timeout - (now - self.opened_at))
        return 0.0

    def _move(self, event: CircuitEvent, now: float) -> None:
        try:
            new = TRANSITIONS[self.state, event]
        except KeyError:
            raise CircuitError(
                f"circuit in state {self.state.name} cannot handle {event.name}"
            ) from None
        self.state = new
        self.generation += 1
        self.failures.clear()
        self.probing = self.passed = 0
        if new is S.OPEN:
            self.opened_at = now
