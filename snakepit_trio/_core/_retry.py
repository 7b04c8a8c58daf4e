"""Retry schedules: whether a failed attempt runs again, and after how long.

How this works: one ``Schedule`` per retried call, made with the policy's numbers, the
absolute deadline (the policy's budget, and the call's own timeout) and a source of random
numbers. After each failed attempt the shell says what the error means (a ``Verdict``) and
when it failed; ``failed`` answers ``Retry(delay)`` or ``GiveUp(reason)``.

Rules:
- FINAL errors are raised at once; MAYBE_RAN errors (the call may have run) are retried only
  for idempotent calls; NOT_RUN errors (the call never ran) and LISTED ones (the policy names
  them) are retried.
- At most ``attempts`` attempts in all.
- Before retry n (n = 1 for the second attempt) the wait is
  ``d = min(max_delay, initial * factor ** (n - 1))`` with jitter: FULL waits a uniform
  time in [0, d] (AWS's "full jitter": callers that failed together spread out), EQUAL in
  [d/2, d], NONE exactly d.
- The wait is at least ``floor``: the error may say when the call can succeed at the
  earliest (an open breaker's ``retry_in``); waiting less would only fail again.
- No attempt starts at or after the deadline: when the wait would reach it, give up now
  instead of sleeping first and failing after.

Pure: times and random numbers are passed in, so the rules are tested without clocks.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable

import attrs


class Jitter(enum.Enum):
    FULL = "full"
    EQUAL = "equal"
    NONE = "none"


class Verdict(enum.Enum):
    NOT_RUN = "did not run"  # always retried
    MAYBE_RAN = "may have run"  # retried for idempotent calls only
    LISTED = "listed"  # the policy's retry_on names it
    FINAL = "final"  # never retried


class Reason(enum.Enum):
    FINAL = "the error is not one to retry"
    NOT_IDEMPOTENT = "the call may have run, and it is not idempotent (idempotent=True allows it)"
    ATTEMPTS = "no attempts left"
    DEADLINE = "the next attempt could not start before the deadline"


@attrs.frozen
class Retry:
    delay: float


@attrs.frozen
class GiveUp:
    reason: Reason


def base_delay(retry: int, initial: float, factor: float, max_delay: float) -> float:
    """The wait before retry ``retry`` (1, 2, ...) without jitter."""
    try:
        grown = initial * factor ** (retry - 1)
    except OverflowError:  # factor ** n beyond a float: capped anyway
        grown = math.inf
    return min(max_delay, grown)


@attrs.define
class Schedule:
    attempts: int
    initial: float
    factor: float
    max_delay: float
    jitter: Jitter
    deadline: float  # absolute; math.inf for none
    random: Callable[[], float]  # uniform in [0, 1)
    idempotent: bool = False
    failures: int = 0  # attempts that failed so far

    def failed(self, now: float, verdict: Verdict, floor: float = 0.0) -> Retry | GiveUp:
        """An attempt failed at ``now`` with an error of ``verdict``: retry, or give up.

        Args:
            now: when it failed.
            verdict: what the error says about running the call again.
            floor: the least wait that can help (0 when the error says nothing).
        """
        self.failures += 1
        if verdict is Verdict.FINAL:
            return GiveUp(Reason.FINAL)
        if verdict is Verdict.MAYBE_RAN and not self.idempotent:
            return GiveUp(Reason.NOT_IDEMPOTENT)
        if self.failures >= self.attempts:
            return GiveUp(Reason.ATTEMPTS)
        delay = max(
            self._jittered(base_delay(self.failures, self.initial, self.factor, self.max_delay)),
            floor,
        )
        if now + delay >= self.deadline:
            return GiveUp(Reason.DEADLINE)
        return Retry(delay)

    def _jittered(self, delay: float) -> float:
        if self.jitter is Jitter.FULL:
            return delay * self.random()
        if self.jitter is Jitter.EQUAL:
            return delay / 2 + delay / 2 * self.random()
        return delay
