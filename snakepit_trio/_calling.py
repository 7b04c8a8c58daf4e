"""One pool call with the caller's options: straight to the engine, or under retry= and
breaker= (``_retry.py``, ``_circuit.py``). Shared by Pool, Session and the bulk calls.

Without a policy or a breaker nothing here costs anything: the call goes to the engine as
it is. With them, every option is checked once, before the first attempt, so a bad argument
is never retried.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from ._circuit import CircuitBreaker
from ._core._sessions import SessionRecord
from ._engine import _admission as admission
from ._engine._batches import BatchAnswer
from ._engine._engine import Engine
from ._progress import ProgressCallback
from ._retry import EventSink, RetryPolicy, check_breaker, check_policy, guarded


def execute(
    engine: Engine,
    tool: str,
    args: dict[str, Any] | None,
    *,
    timeout: float | None,
    idempotent: bool,
    on_progress: ProgressCallback | None,
    kill_on_cancel: bool | None,
    retry: RetryPolicy | None,
    breaker: CircuitBreaker | None,
    session: SessionRecord | None,
) -> Awaitable[Any]:
    """``engine.execute``, under ``retry`` and ``breaker`` when given (see ``guarded``).

    Not a coroutine function itself: without a policy or a breaker it hands back the
    engine's coroutine as it is, so that a waiting call holds no frame of this layer (a
    queue of 100,000 calls held 100,000 of them, with their cells, 632 bytes each). Nothing
    runs before the caller awaits what it returns.
    """
    if retry is None and breaker is None:
        return engine.execute(
            tool,
            args,
            timeout=timeout,
            idempotent=idempotent,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
            session=session,
        )
    return _execute_guarded(
        engine,
        tool,
        args,
        timeout=timeout,
        idempotent=idempotent,
        on_progress=on_progress,
        kill_on_cancel=kill_on_cancel,
        retry=retry,
        breaker=breaker,
        session=session,
    )


async def _execute_guarded(
    engine: Engine,
    tool: str,
    args: dict[str, Any] | None,
    *,
    timeout: float | None,
    idempotent: bool,
    on_progress: ProgressCallback | None,
    kill_on_cancel: bool | None,
    retry: RetryPolicy | None,
    breaker: CircuitBreaker | None,
    session: SessionRecord | None,
) -> Any:
    """``execute`` under ``retry`` and ``breaker``: the options are checked once, when it
    is awaited (as before), so a bad argument is never retried."""
    check_options(
        tool,
        timeout=timeout,
        idempotent=idempotent,
        on_progress=on_progress,
        kill_on_cancel=kill_on_cancel,
        retry=retry,
        breaker=breaker,
    )

    def attempt(attempt_timeout: float | None) -> Any:
        return engine.execute(
            tool,
            args,
            timeout=attempt_timeout,
            idempotent=idempotent,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
            session=session,
        )

    return await guarded(
        attempt,
        retry=retry,
        breaker=breaker,
        timeout=None if timeout is None else float(timeout),
        default_timeout=engine.config.timeout,
        idempotent=idempotent,
        events=_events(engine, tool),
    )


def check_options(
    tool: Any,
    *,
    timeout: Any,
    idempotent: Any,
    on_progress: Any,
    kill_on_cancel: Any,
    retry: Any,
    breaker: Any,
) -> None:
    """Check the options of ``execute``, ``retry=`` and ``breaker=`` included.

    Raises:
        TypeError, ValueError: an option of the wrong type or out of range (named).
    """
    admission.check_call(
        tool,
        timeout=timeout,
        idempotent=idempotent,
        on_progress=on_progress,
        kill_on_cancel=kill_on_cancel,
    )
    check_policy(retry, none="no retries")
    check_breaker(breaker)


async def execute_batch(
    engine: Engine,
    tool: str,
    items: list[Any],
    *,
    timeout: float | None,
    idempotent: bool,
    kill_on_cancel: bool | None,
    stop: bool,
    retry: RetryPolicy | None,
    breaker: CircuitBreaker | None,
    session: SessionRecord | None,
    split: bool = False,
) -> BatchAnswer:
    """``engine.execute_batch`` (one call for many items), under ``retry`` and ``breaker``
    when given: they see the batch as one call (an item's own error is its outcome, not
    the call's failure). The options were checked by the caller."""

    def attempt(attempt_timeout: float | None) -> Awaitable[BatchAnswer]:
        return engine.execute_batch(
            tool,
            items,
            timeout=attempt_timeout,
            idempotent=idempotent,
            kill_on_cancel=kill_on_cancel,
            stop=stop,
            session=session,
            split=split,
        )

    if retry is None and breaker is None:
        return await attempt(timeout)
    return await guarded(
        attempt,
        retry=retry,
        breaker=breaker,
        timeout=None if timeout is None else float(timeout),
        default_timeout=engine.config.timeout,
        idempotent=idempotent,
        events=_events(engine, tool),
    )


def _events(engine: Engine, tool: str) -> EventSink | None:
    """Where a call's retries and breaker changes go: the pool's telemetry, while it
    listens (``retry.*``, ``breaker.*``)."""
    hub = engine.telemetry
    if not hub.on:
        return None

    def emit(name: str, measurements: dict[str, float], metadata: dict[str, Any]) -> None:
        metadata["tool"] = tool
        hub.emit(name, measurements, metadata)

    return emit
