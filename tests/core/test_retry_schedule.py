"""Core layer (synchronous): retry schedules, with explicit times and random numbers."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from snakepit_trio._core._retry import (
    GiveUp,
    Jitter,
    Reason,
    Retry,
    Schedule,
    Verdict,
    base_delay,
)


def schedule(**kw: object) -> Schedule:
    args: dict[str, object] = {
        "attempts": 4,
        "initial": 0.1,
        "factor": 2.0,
        "max_delay": 0.3,
        "jitter": Jitter.NONE,
        "deadline": math.inf,
        "random": lambda: 0.5,
    }
    args.update(kw)
    return Schedule(**args)  # type: ignore[arg-type]


def test_capped_exponential_waits_then_no_attempts_left() -> None:
    s = schedule()
    assert s.failed(0.0, Verdict.NOT_RUN) == Retry(0.1)
    assert s.failed(0.0, Verdict.NOT_RUN) == Retry(0.2)
    assert s.failed(0.0, Verdict.LISTED) == Retry(0.3)  # capped
    assert s.failed(0.0, Verdict.NOT_RUN) == GiveUp(Reason.ATTEMPTS)


def test_jitter_kinds() -> None:
    full = schedule(jitter=Jitter.FULL, random=lambda: 0.25).failed(0, Verdict.NOT_RUN)
    equal = schedule(jitter=Jitter.EQUAL, random=lambda: 0.5).failed(0, Verdict.NOT_RUN)
    assert isinstance(full, Retry) and full.delay == 0.025
    assert isinstance(equal, Retry) and math.isclose(equal.delay, 0.075)


def test_what_the_error_says_decides_first() -> None:
    assert schedule().failed(0, Verdict.FINAL) == GiveUp(Reason.FINAL)
    assert schedule().failed(0, Verdict.MAYBE_RAN) == GiveUp(Reason.NOT_IDEMPOTENT)
    assert schedule(idempotent=True).failed(0, Verdict.MAYBE_RAN) == Retry(0.1)


def test_a_floor_raises_the_wait_and_the_deadline_stops_early() -> None:
    assert schedule().failed(0, Verdict.NOT_RUN, floor=2.5) == Retry(2.5)
    assert schedule(deadline=2.0).failed(0, Verdict.NOT_RUN, floor=2.5) == GiveUp(Reason.DEADLINE)
    assert schedule(deadline=1.1).failed(1.0, Verdict.NOT_RUN) == GiveUp(Reason.DEADLINE)
    assert schedule(deadline=1.11).failed(1.0, Verdict.NOT_RUN) == Retry(0.1)


def test_huge_factors_do_not_overflow() -> None:
    assert base_delay(5000, 1.0, 10.0, 7.0) == 7.0
    assert base_delay(1, 0.0, 1e300, 7.0) == 0.0


@given(
    attempts=st.integers(1, 12),
    initial=st.floats(0, 5),
    factor=st.floats(1, 10),
    max_delay=st.floats(0, 20),
    jitter=st.sampled_from(Jitter),
    budget=st.none() | st.floats(0.01, 60),
    seed=st.integers(0, 2**32),
    idempotent=st.booleans(),
    run_times=st.lists(st.floats(0, 10), min_size=1, max_size=15),
    verdicts=st.lists(st.sampled_from(Verdict), min_size=15, max_size=15),
)
def test_waits_stay_in_bounds_and_everything_fits_the_budget(
    attempts: int,
    initial: float,
    factor: float,
    max_delay: float,
    jitter: Jitter,
    budget: float | None,
    seed: int,
    idempotent: bool,
    run_times: list[float],
    verdicts: list[Verdict],
) -> None:
    deadline = math.inf if budget is None else budget
    s = schedule(
        attempts=attempts,
        initial=initial,
        factor=factor,
        max_delay=max_delay,
        jitter=jitter,
        deadline=deadline,
        random=random.Random(seed).random,
        idempotent=idempotent,
    )
    now, started = 0.0, 0
    for run_time, verdict in zip(run_times, verdicts, strict=False):
        started += 1
        now += run_time
        step = s.failed(now, verdict)
        if isinstance(step, GiveUp):
            if verdict is Verdict.FINAL:
                assert step.reason is Reason.FINAL
            break
        assert verdict is not Verdict.FINAL
        assert verdict is not Verdict.MAYBE_RAN or idempotent
        assert 0.0 <= step.delay <= max_delay
        if jitter is Jitter.NONE:
            assert step.delay == base_delay(started, initial, factor, max_delay)
        now += step.delay
        assert now < deadline, "no attempt starts at or after the deadline"
    assert started <= attempts
