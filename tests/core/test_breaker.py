"""The crash breaker's rules, with explicit times."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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
