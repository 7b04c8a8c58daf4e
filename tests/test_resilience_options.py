"""Unit (no workers): RetryPolicy, CircuitBreaker and retry() refuse bad values with one typed
line naming the argument and what to change; which errors a policy retries."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import snakepit_trio as sp

NOT_NUMBERS = [(True, TypeError), ("1", TypeError), (None, TypeError), (math.nan, ValueError)]
NEGATIVE = [(-1, ValueError), (-math.inf, ValueError), (math.inf, ValueError)]
NOT_COUNTS = [(0, ValueError), (1.0, TypeError), (True, TypeError), (None, TypeError)]

POLICY: dict[str, list[tuple[Any, type[Exception]]]] = {
    "attempts": NOT_COUNTS,
    "initial": [*NOT_NUMBERS, *NEGATIVE],
    "factor": [*NOT_NUMBERS, *NEGATIVE, (0.5, ValueError)],
    "max_delay": [*NOT_NUMBERS, *NEGATIVE],
    "jitter": [("random", ValueError), (None, TypeError), ("", ValueError)],
    "budget": [(0, ValueError), (True, TypeError), (math.inf, ValueError), ("5", TypeError)],
    "rng": [(1, TypeError), ("random", TypeError)],
    "on_retry": [(1, TypeError), ("print", TypeError)],
    "retry_on": [
        (1, TypeError),
        (ValueError(), TypeError),  # an instance, not the class
        (("ValueError", 3), TypeError),
        ("", ValueError),
        (object, TypeError),
    ],
}
BREAKER: dict[str, list[tuple[Any, type[Exception]]]] = {
    "failure_threshold": NOT_COUNTS,
    "reset_timeout": [*NOT_NUMBERS, *NEGATIVE],
    "half_open_calls": NOT_COUNTS,
    "window": [(0, ValueError), (True, TypeError), (math.inf, ValueError)],
    "failure_on": [(1, TypeError), ("ValueError", TypeError), ((ValueError, "x"), TypeError)],
    "name": [(1, TypeError), (None, TypeError)],
    "on_state_change": [(1, TypeError)],
}


@pytest.mark.parametrize(
    ("field", "value", "error"), [(f, *v) for f, vs in POLICY.items() for v in vs]
)
def test_retry_policy_fields_are_checked(field: str, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        sp.RetryPolicy(**{field: value})
    text = str(info.value)
    assert text.startswith(f"RetryPolicy {field}") and "\n" not in text, text


@pytest.mark.parametrize(
    ("field", "value", "error"), [(f, *v) for f, vs in BREAKER.items() for v in vs]
)
def test_circuit_breaker_arguments_are_checked(
    field: str, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        sp.CircuitBreaker(**{field: value})
    text = str(info.value)
    assert text.startswith(f"CircuitBreaker {field}") and "\n" not in text, text


@pytest.mark.parametrize("listed", [sp.WorkerCrashed, sp.RequestTimeout, sp.StreamIdleTimeout])
def test_listing_an_error_of_a_call_that_may_have_run_says_to_use_idempotent(
    listed: type[Exception],
) -> None:
    with pytest.raises(ValueError, match=rf"lists {listed.__name__}: .* pass idempotent=True"):
        sp.RetryPolicy(retry_on=(listed,))


@pytest.mark.parametrize("listed", [sp.PoolClosed, sp.UnknownTool, sp.InvalidArguments])
def test_listing_an_error_that_is_never_retried_is_refused(listed: type[Exception]) -> None:
    with pytest.raises(ValueError, match=rf"lists {listed.__name__}, which is never retried"):
        sp.RetryPolicy(retry_on=[listed])


def test_good_values_and_what_they_become() -> None:
    policy = sp.RetryPolicy(
        attempts=np.int64(2), initial=0, factor=1, max_delay=np.float32(0.5), budget=3
    )
    assert policy.attempts == 2 and policy.retry_on == ()
    assert sp.RetryPolicy(retry_on=OSError).retry_on == (OSError,)
    assert sp.RetryPolicy(retry_on=["Busy", KeyError]).retry_on == ("Busy", KeyError)
    assert sp.RetryPolicy(retry_on=(sp.QueueTimeout,)) == sp.RetryPolicy(
        retry_on=(sp.QueueTimeout,)
    )
    breaker = sp.CircuitBreaker(failure_on=OSError, window=np.float64(2), reset_timeout=0)
    assert breaker.failure_on == (OSError,)


def verdict(policy: sp.RetryPolicy, error: Exception) -> str:
    return policy._verdict(error)[0].name


def test_which_errors_a_policy_retries() -> None:
    plain = sp.RetryPolicy()
    for error in (
        sp.QueueTimeout(1),
        sp.PoolSaturated(5),
        sp.PoolUnhealthy(3, 10, "signal", 4),
        sp.SessionQuotaExceeded(2),
        sp.CircuitOpen("c", 2),
        sp.RequestTimeout("t", 1, started=False),
    ):
        assert verdict(plain, error) == "NOT_RUN", error
    crashed = sp.WorkerCrashed("w", 1, 1, None, "")
    for error in (crashed, sp.RequestTimeout("t", 1, started=True), sp.StreamIdleTimeout("t", 1)):
        assert verdict(plain, error) == "MAYBE_RAN", error
    remote = sp.RemoteError("t", "ValueError", "m", "")
    for error in (
        remote,
        sp.PoolClosed("closed"),
        sp.SessionLost("s"),
        sp.UnknownTool("t", []),
        sp.InvalidArguments("t", "a", "r"),
        sp.SerializationError("x"),
        sp.PayloadTooLarge("x", 2, 1),
        KeyError("k"),
    ):
        assert verdict(plain, error) == "FINAL", error
    assert plain._verdict(sp.PoolUnhealthy(3, 10, "signal", 4.5))[1] == 4.5
    assert plain._verdict(sp.CircuitOpen("c", 2.5))[1] == 2.5
    # retry_on: every exception, and the remote error: listed; the others keep their rule.
    broad = sp.RetryPolicy(retry_on=Exception)
    assert verdict(broad, remote) == verdict(broad, KeyError()) == "LISTED"
    assert verdict(broad, crashed) == "MAYBE_RAN" and verdict(broad, sp.PoolClosed()) == "FINAL"


def test_remote_type_names_match_whole_names_or_their_last_dotted_parts() -> None:
    policy = sp.RetryPolicy(retry_on=("Overloaded", "pkg.mod.Busy"))

    def retried(remote_type: str) -> bool:
        return verdict(policy, sp.RemoteError("t", remote_type, "m", "")) == "LISTED"

    assert retried("Overloaded") and retried("app.errors.Overloaded")
    assert retried("pkg.mod.Busy") and retried("x.pkg.mod.Busy")
    assert not retried("NotOverloaded") and not retried("mod.Busy") and not retried("Busy")


async def test_retry_checks_its_arguments() -> None:
    async def op() -> None:
        pytest.fail("never called")

    with pytest.raises(TypeError, match=r"^retry must be a snakepit_trio\.RetryPolicy; got 3"):
        await sp.retry(3, op)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^fn must be a callable"):
        await sp.retry(sp.RetryPolicy(), "op")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^idempotent must be True or False"):
        await sp.retry(sp.RetryPolicy(), op, idempotent=1)  # type: ignore[arg-type]
