"""RetryPolicy and retry(): run a failed call again, as often and as late as the policy says.

The schedule is pure (``_core/_retry.py``); this is its Trio shell. It sorts errors by what
they say about the call (the failure table's "did the request run?" column: a call that did
not run is safe to run again, one that may have run only if it is idempotent), sleeps on
Trio's clock, and keeps pool calls within one deadline: the policy's budget and the call's
own ``timeout`` are one budget for every attempt and the waits between them.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import attrs
import trio

from ._circuit import CircuitBreaker, exception_types
from ._core import _checks as checks
from ._core._retry import GiveUp, Jitter, Reason, Schedule, Verdict
from ._errors import (
    CircuitOpen,
    InvalidArguments,
    InvalidVariable,
    PayloadTooLarge,
    PoolClosed,
    PoolSaturated,
    PoolUnhealthy,
    QueueTimeout,
    RemoteError,
    RequestTimeout,
    SerializationError,
    SessionLost,
    SessionQuotaExceeded,
    UnknownTool,
    WorkerCrashed,
)

__all__ = ["RetryPolicy", "retry"]

log = logging.getLogger("snakepit_trio")

T = TypeVar("T")

# The call did not run, and may succeed later: always retried.
_NOT_RUN = (QueueTimeout, PoolSaturated, PoolUnhealthy, SessionQuotaExceeded, CircuitOpen)
# The call may have run: retried for idempotent calls only (RequestTimeout once started).
_MAYBE_RAN = (WorkerCrashed, RequestTimeout)
# Running it again cannot help (the same input fails the same way, or the pool or the
# session's state is gone): never retried.
_NEVER = (
    PoolClosed,
    SessionLost,
    UnknownTool,
    InvalidArguments,
    InvalidVariable,
    SerializationError,
    PayloadTooLarge,
)
RetryCallback = Callable[[int, BaseException, float], object]


RetryOn = type[BaseException] | str | Iterable[type[BaseException] | str]


def _retry_on(value: RetryOn) -> tuple[type[BaseException] | str, ...]:
    if isinstance(value, tuple | list | set | frozenset):
        return tuple(value)
    return (value,)  # type: ignore[return-value]  # checked by _check_retry_on


def _check_retry_on(instance: Any, attribute: Any, value: tuple[Any, ...]) -> None:
    classes = [item for item in value if not isinstance(item, str)]
    exception_types("RetryPolicy retry_on", tuple(classes))
    for item in value:
        if isinstance(item, str) and not item:
            raise ValueError("RetryPolicy retry_on: a remote type name must not be empty")
    for cls in classes:
        if issubclass(cls, _MAYBE_RAN):
            raise ValueError(
                f"RetryPolicy retry_on lists {cls.__name__}: such a call may have run, so "
                "it is retried only when the call is idempotent; remove it and pass "
                "idempotent=True to the call (or to retry())"
            )
        if issubclass(cls, _NEVER):
            raise ValueError(
                f"RetryPolicy retry_on lists {cls.__name__}, which is never retried (running "
                "the call again cannot help); remove it"
            )


def _number(*, zero: bool = False, minimum: float = 0.0, unit: str = "seconds") -> Any:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        checks.number(f"RetryPolicy {attribute.name}", value, minimum=minimum, zero=zero, unit=unit)

    return check


def _attempts(instance: Any, attribute: Any, value: Any) -> None:
    checks.whole("RetryPolicy attempts", value, unit="attempts")


def _jitter(instance: Any, attribute: Any, value: Any) -> None:
    checks.choice("RetryPolicy jitter", value, [j.value for j in Jitter])


def _budget(instance: Any, attribute: Any, value: Any) -> None:
    checks.number("RetryPolicy budget", value, none="no limit")


def _callable(what: str) -> Any:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        checks.function(f"RetryPolicy {attribute.name}", value, none=what)

    return check


@attrs.frozen
class RetryPolicy:
    """How a failed call is run again: how often, how long apart, after which errors.

    Which errors are retried (the README's failure table says whether a call ran):
    - a call that did not run: ``QueueTimeout``, ``PoolSaturated``, ``PoolUnhealthy``,
      ``SessionQuotaExceeded``, ``CircuitOpen``, ``RequestTimeout`` before the call reached
      a worker: always;
    - a call that may have run: ``WorkerCrashed``, ``RequestTimeout`` once it started: only
      for calls made with ``idempotent=True``;
    - ``RemoteError``: only if ``retry_on`` lists ``RemoteError`` or the remote exception's
      type name;
    - any other exception ``retry_on`` lists (for ``retry()`` around other code);
    - never: ``PoolClosed``, ``SessionLost``, ``UnknownTool``, ``InvalidArguments``,
      ``SerializationError``, ``PayloadTooLarge``, cancellation.

    Before retry n the wait is ``min(max_delay, initial * factor ** (n - 1))``, jittered,
    and at least the ``retry_in`` of a ``PoolUnhealthy`` or ``CircuitOpen``. When the
    policy gives up it raises the last error as itself, with a note saying why.

    Attributes:
        attempts: attempts in all, the first included (1: never retry).
        initial: the wait before the first retry, in seconds.
        factor: each later wait is this many times the one before.
        max_delay: no wait is longer than this.
        jitter: ``"full"`` (a random wait in [0, wait]: callers that failed together
            spread out), ``"equal"`` ([wait/2, wait]) or ``"none"``.
        retry_on: more errors to retry: exception classes, or remote type names
            (``"ValueError"``, ``"mymodule.Overloaded"``) for ``RemoteError``.
        budget: seconds for all attempts and the waits between them (None: no limit).
            A pool call's attempts get at most what is left as their ``timeout``, so the
            call ends within it; around other code, no attempt starts after it.
        rng: returns random floats in [0, 1) for the jitter (default ``random.random``);
            ``random.Random(seed).random`` makes the waits repeatable.
        on_retry: called as ``on_retry(attempt, error, delay)`` before each wait, with the
            number of the attempt that failed (for logs or metrics); what it raises is
            logged.
    """

    attempts: int = attrs.field(default=3, validator=_attempts)
    initial: float = attrs.field(default=0.1, validator=_number(zero=True))
    factor: float = attrs.field(default=2.0, validator=_number(zero=True, minimum=1.0, unit=""))
    max_delay: float = attrs.field(default=5.0, validator=_number(zero=True))
    jitter: str = attrs.field(default="full", validator=_jitter)
    retry_on: tuple[type[BaseException] | str, ...] = attrs.field(
        default=(), converter=_retry_on, validator=_check_retry_on
    )
    budget: float | None = attrs.field(default=None, validator=_budget)
    rng: Callable[[], float] | None = attrs.field(
        default=None, validator=_callable("random.random"), eq=False, repr=False
    )
    on_retry: RetryCallback | None = attrs.field(
        default=None, validator=_callable("no callback"), eq=False, repr=False
    )

    def _schedule(self, deadline: float, idempotent: bool) -> Schedule:
        return Schedule(
            attempts=self.attempts,
            initial=float(self.initial),
            factor=float(self.factor),
            max_delay=float(self.max_delay),
            jitter=Jitter(self.jitter),
            deadline=deadline,
            random=self.rng or random.random,
            idempotent=idempotent,
        )

    def _verdict(self, error: Exception) -> tuple[Verdict, float]:
        """What ``error`` says about running the call again, and the least useful wait."""
        if isinstance(error, _NEVER):
            return Verdict.FINAL, 0.0
        if isinstance(error, _NOT_RUN):
            return Verdict.NOT_RUN, float(getattr(error, "retry_in", 0.0))
        if isinstance(error, RequestTimeout):  # QueueTimeout is not one
            return (Verdict.MAYBE_RAN if error.started else Verdict.NOT_RUN), 0.0
        if isinstance(error, WorkerCrashed):
            return Verdict.MAYBE_RAN, 0.0
        listed = [c for c in self.retry_on if not isinstance(c, str)]
        if isinstance(error, tuple(listed)):
            return Verdict.LISTED, 0.0
        if isinstance(error, RemoteError):
            kind = error.remote_type
            for name in self.retry_on:
                if isinstance(name, str) and (kind == name or kind.endswith("." + name)):
                    return Verdict.LISTED, 0.0
        return Verdict.FINAL, 0.0


async def retry(
    policy: RetryPolicy, fn: Callable[..., Awaitable[T]], *args: Any, idempotent: bool = False
) -> T:
    """``await fn(*args)``, run again after the errors ``policy`` retries.

    For pool calls prefer ``pool.execute(..., retry=policy)``: it also keeps each attempt's
    timeout within the budget. Pass keyword arguments with ``functools.partial``.

    Args:
        policy: the ``RetryPolicy``.
        fn: an async function.
        args: its positional arguments.
        idempotent: ``fn`` may safely run twice: errors of calls that may have run
            (``WorkerCrashed``, ``RequestTimeout`` once started) are retried too.

    Returns:
        What ``fn`` returned, on the first attempt that succeeded.

    Raises:
        The last attempt's error, as itself (a note says why no retry followed).
        TypeError: ``policy`` is not a RetryPolicy, ``fn`` not callable, or
            ``idempotent`` not a bool.
    """
    check_policy(policy)
    checks.function("fn", fn)
    checks.flag("idempotent", idempotent)
    deadline = math.inf if policy.budget is None else trio.current_time() + policy.budget
    return await retrying(policy, lambda: fn(*args), idempotent=idempotent, deadline=deadline)


def check_policy(policy: Any, *, none: str | None = None) -> None:
    """Check a ``retry=`` argument.

    Raises:
        TypeError: not a RetryPolicy (or None where allowed).
    """
    if isinstance(policy, RetryPolicy) or (policy is None and none is not None):
        return
    also = f" or None ({none})" if none is not None else ""
    raise TypeError(
        f"retry must be a snakepit_trio.RetryPolicy{also}; got {checks.shown(policy)} "
        f"({checks.a_type(policy)})"
    )


def check_breaker(breaker: Any) -> None:
    """Check a ``breaker=`` argument.

    Raises:
        TypeError: not a CircuitBreaker or None.
    """
    if breaker is None or isinstance(breaker, CircuitBreaker):
        return
    raise TypeError(
        "breaker must be a snakepit_trio.CircuitBreaker or None (no breaker); got "
        f"{checks.shown(breaker)} ({checks.a_type(breaker)})"
    )


# Where a pool call's retries and breaker changes are reported: (event name, measurements,
# metadata), for the pool's telemetry (``_calling.py`` passes one only while it listens).
EventSink = Callable[[str, dict[str, float], dict[str, Any]], None]


async def retrying(
    policy: RetryPolicy,
    attempt: Callable[[], Awaitable[T]],
    *,
    idempotent: bool,
    deadline: float,
    events: EventSink | None = None,
) -> T:
    """Run ``attempt()`` until it succeeds or ``policy`` gives up (then raise its error)."""
    schedule = policy._schedule(deadline, idempotent)
    started = trio.current_time()
    while True:
        try:
            return await attempt()
        except Exception as exc:  # cancellation and the like pass through untouched
            verdict, floor = policy._verdict(exc)
            step = schedule.failed(trio.current_time(), verdict, floor)
            if isinstance(step, GiveUp):
                # Said unless the error is simply not one to retry.
                if schedule.failures > 1 or step.reason is not Reason.FINAL:
                    exc.add_note(_gave_up(schedule.failures, started, step.reason.value))
                    if events is not None:
                        events(
                            "retry.exhausted",
                            {"attempt": schedule.failures},
                            {"error_type": type(exc).__name__, "reason": step.reason.value},
                        )
                raise
            error = exc
        _report(policy, schedule.failures, error, step.delay)
        if events is not None:
            events(
                "retry.attempt",
                {"attempt": schedule.failures, "backoff": step.delay},
                {"error_type": type(error).__name__},
            )
        await trio.sleep(step.delay)
        if trio.current_time() >= deadline:  # the sleep overshot: no attempt may start now
            error.add_note(_gave_up(schedule.failures, started, "the deadline passed"))
            raise error


def _gave_up(attempts: int, started: float, why: str) -> str:
    if attempts == 1:
        return f"snakepit_trio: not retried: {why}"
    elapsed = trio.current_time() - started
    return f"snakepit_trio: gave up after {attempts} attempts in {elapsed:.3g}s: {why}"


def _report(policy: RetryPolicy, attempt: int, error: BaseException, delay: float) -> None:
    log.debug("attempt %d failed (%r); retrying in %.3gs", attempt, error, delay)
    if policy.on_retry is None:
        return
    try:
        policy.on_retry(attempt, error, delay)
    except Exception:  # a broken callback must not break the call it watches
        log.exception("on_retry callback of %r failed", policy)


async def guarded(
    attempt: Callable[[float | None], Awaitable[T]],
    *,
    retry: RetryPolicy | None,
    breaker: CircuitBreaker | None,
    timeout: float | None,
    default_timeout: float | None,
    idempotent: bool,
    events: EventSink | None = None,
) -> T:
    """A pool call under ``retry`` and ``breaker``; ``attempt(t)`` runs it once with
    timeout ``t`` (None: the pool's). ``events``: where retries and the breaker's changes
    are reported, if anywhere.

    One deadline holds for every attempt and wait: ``timeout`` when given (math.inf: none),
    and the policy's budget. Without either, each attempt has the pool's timeout.
    """
    if retry is None:
        return await _under(breaker, attempt, timeout, events)
    limit = math.inf if timeout is None else timeout
    if retry.budget is not None:
        limit = min(limit, retry.budget)
    deadline = trio.current_time() + limit

    def once() -> Awaitable[T]:
        if deadline == math.inf:
            return _under(breaker, attempt, timeout, events)
        left = deadline - trio.current_time()
        if timeout is None and default_timeout is not None:
            left = min(left, default_timeout)
        return _under(breaker, attempt, left, events)

    return await retrying(retry, once, idempotent=idempotent, deadline=deadline, events=events)


async def _under(
    breaker: CircuitBreaker | None,
    attempt: Callable[[float | None], Awaitable[T]],
    timeout: float | None,
    events: EventSink | None = None,
) -> T:
    if breaker is None:
        return await attempt(timeout)
    if events is None:
        async with breaker.guard():
            return await attempt(timeout)
    before = breaker.state
    try:
        async with breaker.guard():
            if before == "half_open":  # this call is a probe
                events("breaker.half_open", {"failures": 0}, {"breaker": breaker.name})
            return await attempt(timeout)
    except CircuitOpen:
        events("breaker.rejected", {"failures": breaker.failures}, {"breaker": breaker.name})
        raise
    finally:
        after = breaker.state
        if after != before:  # "breaker.opened", "breaker.closed", "breaker.half_open"
            name = "breaker.opened" if after == "open" else f"breaker.{after}"
            events(name, {"failures": breaker.failures}, {"breaker": breaker.name})
