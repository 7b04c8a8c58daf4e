"""Restart backoff: exponential with a cap, reset once a worker has stayed up long enough."""

from __future__ import annotations

import attrs


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

    initial: float = attrs.field(default=0.05, validator=attrs.validators.ge(0))
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    max_delay: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))
    reset_after: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))


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
