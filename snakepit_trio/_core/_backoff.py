"""Restart backoff: exponential with a cap, reset once a worker has stayed up long enough."""

from __future__ import annotations

from typing import Any

import attrs

from . import _checks as checks


def _seconds(instance: Any, attribute: Any, value: Any) -> None:
    checks.number(f"RestartPolicy {attribute.name}", value, zero=True)


def _factor(instance: Any, attribute: Any, value: Any) -> None:
    checks.number(f"RestartPolicy {attribute.name}", value, minimum=1.0, zero=True, unit="")


@attrs.frozen
class RestartPolicy:
    """How quickly a crashed worker is replaced.

    Attributes:
        initial: delay before the first restart after a crash, in seconds.
        factor: each consecutive crash multiplies the delay by this.
        max_delay: the delay never exceeds this.
        reset_after: a worker that served this long (from ready) resets the delay to
            ``initial``.
    """

    initial: float = attrs.field(default=0.05, validator=_seconds)
    factor: float = attrs.field(default=2.0, validator=_factor)
    max_delay: float = attrs.field(default=10.0, validator=_seconds)
    reset_after: float = attrs.field(default=10.0, validator=_seconds)


@attrs.define
class Backoff:
    policy: RestartPolicy
    failures: int = 0

    def next_delay(self, uptime: float) -> float:
        """Record a crash after ``uptime`` seconds alive and return the delay before restarting."""
        if uptime >= self.policy.reset_after:
            self.failures = 0
        delay = min(self.policy.initial * self.policy.factor**self.failures, self.policy.max_delay)
        self.failures += 1
        return delay
