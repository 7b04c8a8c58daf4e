"""CircuitBreaker: fail calls fast while a service keeps failing, then probe it.

The rules live in ``_core/_circuit.py`` (pure, with times passed in); this is their Trio
shell: it reads Trio's clock, sorts outcomes into successes, failures and neither, raises
``CircuitOpen``, and reports each change of state to an optional callback (the one hook for
logs and metrics). One Trio thread runs everything here, so no lock is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar

import trio

from ._core import _checks as checks
from ._core._circuit import Circuit, CircuitState, Ticket
from ._errors import CircuitOpen, InvalidArguments, PoolClosed, UnknownTool

__all__ = ["CircuitBreaker"]

log = logging.getLogger("snakepit_trio")

# Errors that say nothing about the service: the call never reached it.
_NEITHER = (UnknownTool, InvalidArguments, PoolClosed, CircuitOpen)

StateCallback = Callable[["CircuitBreaker", str, str], object]
ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]
R = TypeVar("R")


def exception_types(name: str, value: Any) -> tuple[type[BaseException], ...]:
    """An exception class, or a tuple (or list, set) of them, as a tuple.

    Raises:
        TypeError: anything else (named, with what was given).
    """
    items = value if isinstance(value, tuple | list | set | frozenset) else (value,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(
                f"{name} must be an exception class or a tuple of them; got "
                f"{checks.shown(item)} ({checks.a_type(item)})"
            )
    return tuple(items)


class CircuitBreaker:
    """Fails calls fast after repeated failures, then lets a few probe calls through.

    States: ``"closed"`` (calls run; failures are counted, a success clears the count),
    ``"open"`` (calls raise ``CircuitOpen`` at once, for ``reset_timeout`` seconds) and
    ``"half_open"`` (up to ``half_open_calls`` probe calls run at a time; that many
    successes close it, one failure opens it again).

    Use it around pool calls (``pool.execute(..., breaker=b)``, ``session.execute``,
    ``pool.map``) or any code (``async with b.guard(): ...``). Tasks may share one breaker.
    Its times are Trio's clock: use it within one ``trio.run``.

    What counts: an exception of a ``failure_on`` type is a failure; any other exception,
    like a return, is a success (the service answered), except cancellation and errors of
    calls that never reached the service (``UnknownTool``, ``InvalidArguments``,
    ``PoolClosed``, ``CircuitOpen``), which count for nothing.

    Args:
        failure_threshold: failures with no success between them that open it.
        reset_timeout: seconds it stays open before probe calls may run.
        half_open_calls: probe calls let through at a time while half-open, and the
            successes that close it.
        window: seconds after which a failure is no longer counted (None: any age).
        failure_on: exception classes that count as failures (default: every Exception).
        name: shown in ``CircuitOpen`` and ``repr``.
        on_state_change: called as ``on_state_change(breaker, old, new)`` with state
            names at each change (for logs or metrics); what it raises is logged.

    Raises:
        TypeError, ValueError: an argument of the wrong type or out of range (named).
    """

    __slots__ = ("_circuit", "failure_on", "name", "on_state_change")

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        *,
        half_open_calls: int = 1,
        window: float | None = None,
        failure_on: ExceptionTypes = Exception,
        name: str = "",
        on_state_change: StateCallback | None = None,
    ) -> None:
        threshold = checks.whole("CircuitBreaker failure_threshold", failure_threshold)
        reset = checks.number("CircuitBreaker reset_timeout", reset_timeout, zero=True)
        probes = checks.whole("CircuitBreaker half_open_calls", half_open_calls, unit="calls")
        span = checks.number("CircuitBreaker window", window, none="failures of any age count")
        assert threshold is not None and reset is not None and probes is not None
        self.failure_on = exception_types("CircuitBreaker failure_on", failure_on)
        self.name: str = checks.text("CircuitBreaker name", name) or ""
        self.on_state_change = checks.function(
            "CircuitBreaker on_state_change", on_state_change, none="no callback"
        )
        self._circuit = Circuit(threshold, reset, probes, span)

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"``, now."""
        return self._changed(lambda c, now: c.poll(now)).value

    @property
    def retry_in(self) -> float:
        """Seconds until a call may run (0 unless open)."""
        return self._changed(lambda c, now: c.retry_in(now))

    @property
    def failures(self) -> int:
        """Failures counted towards opening it (while closed)."""
        return self._circuit.counted(trio.current_time())

    def guard(self) -> AbstractAsyncContextManager[None]:
        """Run a block under the breaker: ``async with breaker.guard(): ...``.

        Entering raises ``CircuitOpen`` if the breaker refuses the call; leaving records
        how the block ended (see the class docstring). Exceptions pass through unchanged.

        Returns:
            An async context manager.

        Raises:
            CircuitOpen: on entering, while the breaker is open (or its probes run).
        """
        return Guard(self)

    def __repr__(self) -> str:
        c = self._circuit
        name = f" {self.name!r}" if self.name else ""
        return (
            f"<CircuitBreaker{name} {c.state.value} failures={len(c.failures)}/{c.threshold} "
            f"reset_timeout={c.reset_timeout:g}>"
        )

    # --- what guard() and the pool use ----------------------------------------------------
    def _admit(self) -> Ticket:
        ticket = self._changed(lambda c, now: c.admit(now))
        if ticket is None:
            raise CircuitOpen(self.name, self._circuit.retry_in(trio.current_time()))
        return ticket

    def _settle(self, ticket: Ticket, error: BaseException | None) -> None:
        if error is None:
            self._changed(lambda c, now: c.succeeded(ticket, now))
        elif not isinstance(error, Exception) or isinstance(error, _NEITHER):
            self._circuit.abstained(ticket)
        elif isinstance(error, self.failure_on):
            self._changed(lambda c, now: c.failed(ticket, now))
        else:
            self._changed(lambda c, now: c.succeeded(ticket, now))

    def _changed(self, step: Callable[[Circuit, float], R]) -> R:
        """Run ``step`` on the circuit at Trio's time; report a change of state."""
        circuit = self._circuit
        before = circuit.state
        result = step(circuit, trio.current_time())
        if circuit.state is not before and self.on_state_change is not None:
            self._report(before, circuit.state)
        return result

    def _report(self, old: CircuitState, new: CircuitState) -> None:
        assert self.on_state_change is not None
        try:
            self.on_state_change(self, old.value, new.value)
        except Exception:  # a broken callback must not break the calls it watches
            log.exception("on_state_change callback of %r failed", self)


class Guard:
    """``breaker.guard()``: admits the block on entry, records its outcome on exit."""

    __slots__ = ("_breaker", "_ticket")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._ticket: Ticket | None = None

    async def __aenter__(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        self._ticket = self._breaker._admit()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ticket, self._ticket = self._ticket, None
        if ticket is not None:
            self._breaker._settle(ticket, exc)
