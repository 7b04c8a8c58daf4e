"""Session handles: calls that keep to one worker, where per-session state lives."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, Literal

import attrs

from . import _bulk as bulk
from . import _calling as calling
from . import _host_tools as host_tools
from ._bulk import ArgsSource, CallSource, PairStream, ResultStream
from ._circuit import CircuitBreaker
from ._core._sessions import SessionRecord
from ._core._variables import VariableError, make_spec
from ._engine._engine import Engine
from ._errors import InvalidVariable, SessionLost
from ._progress import ProgressCallback
from ._public import NoPublicConstructor
from ._retry import RetryPolicy
from ._streaming import Stream

__all__ = ["Session", "Variable"]


@attrs.frozen
class Variable:
    """A typed session variable (from ``session.list_variables()``)."""

    name: str
    type: str
    value: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    max_length: int | None = None
    description: str = ""


@contextmanager
def _as_invalid_variable() -> Iterator[None]:
    try:
        yield
    except VariableError as exc:
        raise InvalidVariable(exc.name, exc.constraint, str(exc)) from None


class Session(host_tools.HostToolRegistrar, metaclass=NoPublicConstructor):
    """A session: its calls run on its worker (strict) or prefer it (prefer).

    Get one from ``pool.session()`` or ``pool.open_session()``; it has no public constructor.
    Two handles of the same session are equal.

    Guarantees, strict affinity: every call runs on the bound worker, in submission order
    (queued behind that worker's other calls when it is busy, never moved elsewhere). If that
    worker dies, calls running there raise ``WorkerCrashed`` and every later call raises
    ``SessionLost``. Prefer affinity: calls use the bound worker when it has a free slot and
    any worker otherwise; nothing is guaranteed about where state lives.
    """

    __slots__ = ("_engine", "_record")

    def __init__(self, engine: Engine, record: SessionRecord) -> None:
        self._engine = engine
        self._record = record

    def _host_scope(self) -> str | None:
        # Host tools only this session's calls see; a closed session takes none (a later
        # session of the same id must not inherit them).
        if self._engine.sessions.store.get(self._record.id) is not self._record:
            raise SessionLost(self._record.id, "the session was closed or expired")
        return self._record.id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Session) and other._record is self._record

    def __hash__(self) -> int:
        return id(self._record)

    def __repr__(self) -> str:
        r = self._record
        return f"<Session {r.id!r} {r.affinity} worker={r.worker!r} calls={r.calls}>"

    @property
    def id(self) -> str:
        """The session's id."""
        return self._record.id

    @property
    def worker_id(self) -> str | None:
        """The worker it is bound to (None after a prefer-session's worker died)."""
        return self._record.worker  # type: ignore[no-any-return]

    @property
    def affinity(self) -> str:
        """``"strict"`` or ``"prefer"``."""
        return self._record.affinity

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata given when it was opened."""
        return self._record.metadata

    @property
    def lost(self) -> bool:
        """True once a strict session's worker died (every later call raises SessionLost)."""
        return self._record.lost is not None

    async def execute(
        self,
        tool: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
        on_progress: ProgressCallback | None = None,
        kill_on_cancel: bool | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> Any:
        """``pool.execute`` within this session (see the class docstring for placement).

        Args:
            tool, args, timeout, idempotent, on_progress, kill_on_cancel, retry, breaker: as
                for ``Pool.execute``. ``SessionLost`` is never retried: the session's state
                is gone.

        Returns:
            The tool's return value.

        Raises:
            SessionLost: a strict session's worker died, or the session was closed.
            The errors of ``Pool.execute``.
        """
        return await calling.execute(
            self._engine,
            tool,
            args,
            timeout=timeout,
            idempotent=idempotent,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
            retry=retry,
            breaker=breaker,
            session=self._record,
        )

    def stream(
        self,
        tool: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        window: int = 16,
        on_progress: ProgressCallback | None = None,
        kill_on_cancel: bool | None = None,
    ) -> AbstractAsyncContextManager[Stream]:
        """``pool.stream`` within this session.

        Args:
            tool, args, timeout, idle_timeout, window, on_progress, kill_on_cancel: as for
                ``Pool.stream``.

        Returns:
            An async context manager yielding the ``Stream``.

        Raises:
            SessionLost: a strict session's worker died, or the session was closed.
            The errors of ``Pool.stream``.
        """
        return Stream._opening(
            self._engine.open_stream(
                tool,
                args,
                timeout=timeout,
                idle_timeout=idle_timeout,
                window=window,
                on_progress=on_progress,
                kill_on_cancel=kill_on_cancel,
                session=self._record,
            )
        )

    def map(
        self,
        tool: str,
        args: ArgsSource,
        *,
        max_concurrency: int | None = None,
        ordered: bool = True,
        return_exceptions: bool = False,
        chunksize: int | Literal["auto"] = "auto",
        timeout: float | None = None,
        idempotent: bool = False,
        kill_on_cancel: bool | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> ResultStream:
        """``pool.map`` within this session: every call runs as ``session.execute`` would.

        Args:
            tool, args, max_concurrency, ordered, return_exceptions, chunksize, timeout,
                idempotent, kill_on_cancel, retry, breaker: as for ``Pool.map``
                (``max_concurrency`` defaults to twice the session's worker's slots).

        Returns:
            An async context manager yielding the async iterator of results.

        Raises:
            SessionLost: a strict session's worker died, or the session was closed.
            The errors of ``Pool.map``.
        """
        return bulk.map_calls(
            self._engine,
            tool,
            args,
            session=self._record,
            max_concurrency=max_concurrency,
            ordered=ordered,
            return_exceptions=return_exceptions,
            chunksize=chunksize,
            timeout=timeout,
            idempotent=idempotent,
            kill_on_cancel=kill_on_cancel,
            retry=retry,
            breaker=breaker,
        )

    def as_completed(
        self,
        calls: CallSource,
        *,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        timeout: float | None = None,
        idempotent: bool = False,
        kill_on_cancel: bool | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> PairStream:
        """``pool.as_completed`` within this session.

        Args:
            calls, max_concurrency, return_exceptions, timeout, idempotent, kill_on_cancel,
                retry, breaker: as for ``Pool.as_completed``.

        Returns:
            An async context manager yielding the async iterator of ``(call, result)``.

        Raises:
            SessionLost: a strict session's worker died, or the session was closed.
            The errors of ``Pool.as_completed``.
        """
        return bulk.as_completed_calls(
            self._engine,
            calls,
            session=self._record,
            max_concurrency=max_concurrency,
            return_exceptions=return_exceptions,
            timeout=timeout,
            idempotent=idempotent,
            kill_on_cancel=kill_on_cancel,
            retry=retry,
            breaker=breaker,
        )

    async def execute_batch(
        self,
        calls: CallSource,
        *,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        timeout: float | None = None,
        idempotent: bool = False,
        kill_on_cancel: bool | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> list[Any]:
        """``pool.execute_batch`` within this session.

        Args:
            calls, max_concurrency, return_exceptions, timeout, idempotent, kill_on_cancel,
                retry, breaker: as for ``Pool.execute_batch``.

        Returns:
            The results, in the order of ``calls``.

        Raises:
            SessionLost: a strict session's worker died, or the session was closed.
            The errors of ``Pool.execute_batch``.
        """
        return await bulk.batch_calls(
            self._engine,
            calls,
            session=self._record,
            max_concurrency=max_concurrency,
            return_exceptions=return_exceptions,
            timeout=timeout,
            idempotent=idempotent,
            kill_on_cancel=kill_on_cancel,
            retry=retry,
            breaker=breaker,
        )

    # --- typed variables (kept on the host with the session) -------------------------
    def register_variable(
        self,
        name: str,
        type: str,
        value: Any,
        *,
        min: float | None = None,
        max: float | None = None,
        choices: Any = None,
        max_length: int | None = None,
        description: str = "",
    ) -> None:
        """Declare a variable and its first value.

        Args:
            name: the variable's name.
            type: "int", "float", "bool", "str", "list", "dict", "bytes" or "ndarray".
            value: its first value.
            min, max: bounds for int and float.
            choices: the allowed values.
            max_length: longest str, list, dict or bytes.
            description: what it is for.

        Returns:
            None.

        Raises:
            InvalidVariable: a bad declaration, a taken name, or a value breaking a rule.
        """
        with _as_invalid_variable():
            spec = make_spec(
                name,
                type,
                min=min,
                max=max,
                choices=choices,
                max_length=max_length,
                description=description,
            )
            self._record.variables.register(spec, value)

    def get_variable(self, name: str) -> Any:
        """A variable's value.

        Args:
            name: the variable's name.

        Returns:
            Its current value.

        Raises:
            InvalidVariable: it was never registered.
        """
        with _as_invalid_variable():
            return self._record.variables.get(name)

    def set_variable(self, name: str, value: Any) -> None:
        """Change a variable's value.

        Args:
            name: the variable's name.
            value: the new value; it must keep the variable's rules.

        Raises:
            InvalidVariable: it was never registered, or the value breaks a rule (named).
        """
        with _as_invalid_variable():
            self._record.variables.set(name, value)

    def delete_variable(self, name: str) -> None:
        """Forget a variable.

        Args:
            name: the variable's name.

        Raises:
            InvalidVariable: it was never registered.
        """
        with _as_invalid_variable():
            self._record.variables.delete(name)

    def list_variables(self) -> list[Variable]:
        """Every variable of the session, with its rules.

        Returns:
            One ``Variable`` per registered variable.

        Raises:
            Nothing; a session without variables gives an empty list.
        """
        variables = self._record.variables
        return [
            Variable(
                name=spec.name,
                type=spec.type,
                value=variables.values[spec.name],
                min=spec.min,
                max=spec.max,
                choices=spec.choices,
                max_length=spec.max_length,
                description=spec.description,
            )
            for spec in variables.specs.values()
        ]

    def close(self) -> None:
        """End the session: the adapter's ``on_session_end`` runs in its worker.

        Raises:
            Nothing; closing a closed session does nothing.
        """
        self._engine.sessions.close(self.id)
