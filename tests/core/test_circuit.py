"""Core layer (synchronous): the call circuit breaker's rules, with explicit times."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from snakepit_trio._core._circuit import (
    TRANSITIONS,
    Circuit,
    CircuitError,
    CircuitEvent,
    CircuitState,
    Ticket,
)

S = CircuitState


def circuit(**kw: object) -> Circuit:
    args: dict[str, object] = {"threshold": 3, "reset_timeout": 10.0, "probes": 1}
    args.update(kw)
    return Circuit(**args)  # type: ignore[arg-type]


def trip(c: Circuit, now: float) -> None:
    for _ in range(c.threshold):
        ticket = c.admit(now)
        assert ticket is not None
        c.failed(ticket, now)
    assert c.state is S.OPEN


def test_consecutive_failures_open_it_and_a_success_clears_the_count() -> None:
    c = circuit()
    tickets = [c.admit(0.0) for _ in range(4)]
    assert all(t is not None and not t.probe for t in tickets)
    c.failed(tickets[0], 1.0)  # type: ignore[arg-type]
    c.failed(tickets[1], 2.0)  # type: ignore[arg-type]
    c.succeeded(tickets[2], 3.0)  # type: ignore[arg-type]
    assert c.state is S.CLOSED and not c.failures
    for t in (4.0, 5.0):
        ticket = c.admit(t)
        assert ticket is not None
        c.failed(ticket, t)
    assert c.state is S.CLOSED
    c.failed(tickets[3], 6.0)  # type: ignore[arg-type]
    assert c.state is S.OPEN and c.opened_at == 6.0
    assert c.admit(7.0) is None and c.retry_in(7.0) == 9.0


def test_a_window_forgets_old_failures() -> None:
    c = circuit(window=5.0)
    for t in (0.0, 1.0):
        ticket = c.admit(t)
        assert ticket is not None
        c.failed(ticket, t)
    ticket = c.admit(5.0)
    assert ticket is not None
    c.failed(ticket, 5.0)  # the one at 0.0 is 5 s old: out
    assert c.state is S.CLOSED and list(c.failures) == [1.0, 5.0]
    ticket = c.admit(5.5)
    assert ticket is not None
    c.failed(ticket, 5.5)
    assert c.state is S.OPEN


def test_half_open_after_reset_timeout_lets_probes_through_and_their_success_closes() -> None:
    c = circuit(probes=2)
    trip(c, 0.0)
    assert c.poll(9.9) is S.OPEN and c.admit(9.9) is None
    first, second = c.admit(10.0), c.admit(10.0)
    assert c.state is S.HALF_OPEN and first and second and first.probe and second.probe
    assert c.admit(10.0) is None, "no more probes than half_open_calls"
    assert c.retry_in(10.0) == 0.0
    c.succeeded(first, 11.0)
    assert c.state is S.HALF_OPEN
    assert c.admit(11.0) is None, "one probe passed, one runs: no third"
    c.succeeded(second, 12.0)
    assert c.state is S.CLOSED
    ticket = c.admit(12.0)
    assert ticket is not None and not ticket.probe


def test_a_failed_probe_reopens_and_an_abstaining_probe_gives_its_turn_back() -> None:
    c = circuit()
    trip(c, 0.0)
    probe = c.admit(10.0)
    assert probe is not None and probe.probe
    c.abstained(probe)
    again = c.admit(10.5)
    assert again is not None and again.probe
    c.failed(again, 11.0)
    assert c.state is S.OPEN and c.opened_at == 11.0
    assert c.admit(20.9) is None and c.admit(21.0) is not None


def test_late_outcomes_of_an_older_generation_are_ignored() -> None:
    c = circuit(threshold=1)
    early = c.admit(0.0)
    late = c.admit(0.0)
    assert early is not None and late is not None
    c.failed(early, 1.0)
    assert c.state is S.OPEN
    c.succeeded(late, 2.0)  # admitted while closed: proves nothing now
    c.failed(late, 2.0)  # and does not push the reset back
    assert c.state is S.OPEN and c.opened_at == 1.0
    probe = c.admit(11.0)
    assert probe is not None
    c.failed(Ticket(probe.generation - 1, probe=True), 11.5)
    assert c.state is S.HALF_OPEN


def test_illegal_moves_name_state_and_event() -> None:
    c = circuit()
    with pytest.raises(CircuitError, match="CLOSED cannot handle PROBES_PASSED"):
        c._move(CircuitEvent.PROBES_PASSED, 0.0)
    assert {new for (_, _), new in TRANSITIONS.items()} == set(S)


class CircuitMachine(RuleBasedStateMachine):
    """Admissions and outcomes at times that only move forward, checked against a model.

    Times are whole seconds, so window and reset boundaries are hit exactly. The model keeps
    the failures since the last success (closed), when the circuit opened, and which probes
    run; each step checks the circuit's answer against the rules of the module docstring.
    """

    @initialize(
        threshold=st.integers(1, 4),
        reset=st.integers(0, 6),
        probes=st.integers(1, 3),
        window=st.none() | st.integers(1, 8),
    )
    def setup(self, threshold: int, reset: int, probes: int, window: int | None) -> None:
        self.c = Circuit(threshold, float(reset), probes, None if window is None else float(window))
        self.now = 0.0
        self.failures: list[float] = []  # counted failures since the last success (closed)
        self.tickets: list[Ticket] = []  # outstanding
        self.opened_at: float | None = None
        self.probing = 0
        self.passed = 0

    def _counted(self) -> int:
        w = self.c.window
        return sum(1 for t in self.failures if w is None or t > self.now - w)

    def _expected_state(self) -> CircuitState:
        if self.opened_at is None:
            return S.CLOSED
        if self.now - self.opened_at >= self.c.reset_timeout:
            return S.HALF_OPEN
        return S.OPEN

    def _open(self) -> None:
        self.opened_at = self.now
        self.failures.clear()
        self.probing = self.passed = 0
        self.tickets.clear()  # every outstanding ticket is stale now

    @rule(dt=st.integers(0, 4))
    def tick(self, dt: int) -> None:
        self.now += dt

    @rule()
    def admit(self) -> None:
        expected = self._expected_state()
        if expected is S.HALF_OPEN and self.c.state is S.OPEN:
            self.tickets.clear()  # the move to half-open makes them stale
        ticket = self.c.admit(self.now)
        assert self.c.state is expected
        if expected is S.CLOSED:
            assert ticket is not None and not ticket.probe
        elif expected is S.OPEN:
            assert ticket is None
        else:
            free = self.probing + self.passed < self.c.probes
            assert (ticket is not None) is free
            if ticket is not None:
                assert ticket.probe
                self.probing += 1
        if ticket is not None:
            self.tickets.append(ticket)

    @rule(data=st.data(), outcome=st.sampled_from(["success", "failure", "none"]))
    def settle(self, data: st.DataObject, outcome: str) -> None:
        if not self.tickets:
            return
        ticket = data.draw(st.sampled_from(self.tickets))
        self.tickets.remove(ticket)
        state = self.c.poll(self.now)
        if state is not self._expected_state():
            raise AssertionError(f"{state} at {self.now}")
        if state is S.HALF_OPEN and self.c.generation != ticket.generation:
            return  # admitted before the move to half-open; poll made it stale
        if outcome == "success":
            self.c.succeeded(ticket, self.now)
            if state is S.CLOSED:
                self.failures.clear()
            elif ticket.probe:
                self.probing -= 1
                self.passed += 1
                if self.passed >= self.c.probes:
                    self.opened_at = None
                    self.failures.clear()
                    self.probing = self.passed = 0
                    self.tickets.clear()
        elif outcome == "failure":
            self.c.failed(ticket, self.now)
            if state is S.CLOSED:
                self.failures.append(self.now)
                if self._counted() >= self.c.threshold:
                    self._open()
            elif ticket.probe:
                self._open()
        else:
            self.c.abstained(ticket)
            if state is S.HALF_OPEN and ticket.probe:
                self.probing -= 1
        assert self.c.state is self._expected_state() or (
            self.c.state is S.OPEN and self._expected_state() is S.HALF_OPEN
        )

    @invariant()
    def consistent(self) -> None:
        c = self.c
        assert c.probing <= c.probes, "never more probes at a time than half_open_calls"
        assert c.probing + c.passed <= c.probes
        state = c.state
        if state is S.CLOSED:
            assert self.opened_at is None and c.retry_in(self.now) == 0.0
            assert len(c.failures) < c.threshold
        else:
            assert self.opened_at is not None and c.opened_at == self.opened_at
        if c.poll(self.now) is S.OPEN:
            assert 0.0 < c.retry_in(self.now) <= c.reset_timeout
            assert c.probing == 0


TestCircuitMachine = CircuitMachine.TestCase
TestCircuitMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
