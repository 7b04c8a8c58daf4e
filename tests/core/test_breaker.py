"""The crash breaker's rules, with explicit times."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from snakepit_trio._core._breaker import BreakerState, CrashBreaker


def breaker() -> CrashBreaker:
    return CrashBreaker(threshold=3, window=10.0, probe_after=5.0)


def test_opens_after_threshold_crashes_within_the_window_only() -> None:
    b = breaker()
    assert not b.record_crash(0.0, "signal")
    assert not b.record_crash(5.0, "signal")
    assert not b.record_crash(10.5, "signal")  # the crash at 0.0 left the window
    assert b.state is BreakerState.CLOSED and b.admit(10.5, 1)
    assert b.record_crash(11.0, "exit")
    assert b.state is BreakerState.OPEN and b.last_cause == "exit"
    assert not b.admit(12.0, 2)
    assert b.retry_in(12.0) == 4.0


def test_one_probe_after_the_pause_and_its_answer_closes() -> None:
    b = breaker()
    for t in (0.0, 0.1, 0.2):
        b.record_crash(t, "signal")
    assert not b.admit(5.1, 1)
    assert b.admit(5.2, 2)  # the probe
    assert b.state is BreakerState.HALF_OPEN
    assert not b.admit(5.3, 3)  # only one probe at a time
    b.answered(3)  # not the probe: proves nothing
    assert b.state is BreakerState.HALF_OPEN
    b.answered(2)
    assert b.state is BreakerState.CLOSED and b.admit(5.4, 4)
    assert not b.crashes  # a fresh start: one more crash does not reopen it
    assert not b.record_crash(5.5, "signal")


def test_a_crash_while_probing_reopens_and_a_lost_probe_frees_the_turn() -> None:
    b = breaker()
    for t in (0.0, 0.1, 0.2):
        b.record_crash(t, "signal")
    assert b.admit(6.0, 1)
    b.gave_up(1)
    assert b.admit(6.1, 2)  # another call may probe
    assert b.record_crash(6.2, "signal")
    assert b.state is BreakerState.OPEN and not b.admit(6.3, 3)
    assert b.admit(11.3, 4)


def test_crashes_while_open_push_the_probe_back() -> None:
    b = breaker()
    for t in (0.0, 0.1, 0.2):
        b.record_crash(t, "signal")
    b.record_crash(4.0, "start")
    assert not b.admit(5.5, 1)
    assert b.admit(9.0, 2)


def test_no_threshold_never_opens() -> None:
    b = CrashBreaker(threshold=None, window=1.0, probe_after=1.0)
    assert not any(b.record_crash(i * 0.01, "signal") for i in range(100))
    assert b.admit(1.0, 1)


@given(st.lists(st.floats(0, 100, allow_nan=False), max_size=30))
def test_never_refuses_while_closed(times: list[float]) -> None:
    b = breaker()
    for i, t in enumerate(sorted(times)):
        b.record_crash(t, "signal")
        assert b.admit(t, i) or b.state is not BreakerState.CLOSED


class BreakerMachine(RuleBasedStateMachine):
    """Crashes, admissions, answers and give-ups at times that only move forward.

    Times are whole seconds (exact in floats), so window and pause boundaries are hit
    exactly. The machine keeps the crashes since the breaker last closed and checks each
    answer against the rules in the module docstring.
    """

    @initialize(
        threshold=st.none() | st.integers(1, 4),
        window=st.integers(1, 8),
        probe_after=st.integers(0, 6),
    )
    def setup(self, threshold: int | None, window: int, probe_after: int) -> None:
        self.b = CrashBreaker(threshold=threshold, window=float(window), probe_after=probe_after)
        self.now = 0.0
        self.crashes: list[float] = []  # since the breaker last closed
        self.next_id = 1
        self.admitted: list[int] = []  # calls let through while not closed (probes)
        self.probing: int | None = None  # the probe whose outcome is still open

    def _in_window(self) -> int:
        return sum(1 for t in self.crashes if t > self.now - self.b.window)

    @rule(dt=st.integers(0, 4))
    def tick(self, dt: int) -> None:
        self.now += dt

    @rule(cause=st.sampled_from(["exit", "signal", "start"]))
    def crash(self, cause: str) -> None:
        before, opened_at = self.b.state, self.b.opened_at
        self.crashes.append(self.now)
        opened = self.b.record_crash(self.now, cause)
        assert self.b.last_cause == cause
        if self.b.threshold is None:
            assert not opened and self.b.state is BreakerState.CLOSED
            return
        if before is BreakerState.CLOSED:
            # threshold crashes within the window open it
            assert opened is (self._in_window() >= self.b.threshold)
        elif before is BreakerState.HALF_OPEN:
            assert opened, "a crash while probing must reopen the breaker"
        else:
            assert not opened and self.b.state is BreakerState.OPEN
            assert self.b.opened_at == self.now >= opened_at  # the pause restarts
        if opened:
            assert self.b.state is BreakerState.OPEN and self.b.opened_at == self.now
            assert self.b.probe is None
            self.probing = None

    @rule()
    def admit(self) -> None:
        cid = self.next_id
        self.next_id += 1
        before = self.b.state
        paused = self.now - self.b.opened_at >= self.b.probe_after
        admitted = self.b.admit(self.now, cid)
        if before is BreakerState.CLOSED:
            assert admitted and self.b.state is BreakerState.CLOSED
        elif before is BreakerState.OPEN and not paused:
            assert not admitted and self.b.state is BreakerState.OPEN
        else:  # the pause is over: one call at a time probes
            assert self.b.state is BreakerState.HALF_OPEN
            free = before is BreakerState.OPEN or self.probing is None
            assert admitted is free, "exactly one probe at a time"
            if admitted:
                assert self.b.probe == cid
                self.probing = cid
                self.admitted.append(cid)

    @rule(data=st.data(), answered=st.booleans())
    def settle(self, data: st.DataObject, answered: bool) -> None:
        """A call ends: with an answer from a worker, or without (cancelled, timed out)."""
        if self.next_id == 1:
            return
        cid = data.draw(st.sampled_from([*self.admitted[-2:], self.next_id - 1]))
        before = self.b.state
        probe = before is BreakerState.HALF_OPEN and cid == self.probing
        if answered:
            self.b.answered(cid)
        else:
            self.b.gave_up(cid)
        if probe:
            self.probing = None
            assert self.b.probe is None
            if answered:  # the probe's answer closes it, with a fresh count
                assert self.b.state is BreakerState.CLOSED and not self.b.crashes
                self.crashes.clear()
                self.admitted.clear()
            else:  # the next call may probe
                assert self.b.state is BreakerState.HALF_OPEN
        else:
            assert self.b.state is before, "a call that was not the probe proves nothing"

    @invariant()
    def state_is_consistent(self) -> None:
        b = self.b
        if b.threshold is None:
            assert b.state is BreakerState.CLOSED
        if b.state is BreakerState.CLOSED:
            assert b.probe is None and b.retry_in(self.now) == 0.0
            assert b.threshold is None or self._in_window() < b.threshold
        else:
            assert b.threshold is not None and len(self.crashes) >= b.threshold
            assert b.opened_at <= self.now
        if b.state is BreakerState.OPEN:
            assert b.probe is None
            waited = self.now - b.opened_at
            assert b.retry_in(self.now) == max(0.0, b.probe_after - waited)
            assert 0.0 <= b.retry_in(self.now) <= b.probe_after
        if b.state is BreakerState.HALF_OPEN:
            assert b.retry_in(self.now) == 0.0 and b.probe == self.probing
            assert self.now - b.opened_at >= b.probe_after
        # It forgets crashes only when they have left the window (checked at each crash).
        kept = list(b.crashes)
        assert kept == self.crashes[len(self.crashes) - len(kept) :]
        assert b.threshold is None or len(kept) >= self._in_window()


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
