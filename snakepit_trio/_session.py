"""Session handles: calls that keep to one worker, where per-session state lives."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from ._core._sessions import SessionRecord
from ._core._variables import VariableError, make_spec
from ._errors import InvalidVariable
from ._progress import ProgressCallback
from ._streaming import Stream

if TYPE_CHECKING:
    from ._pool import Pool

__all__ = ["Session", "SessionInfo", "Variable"]


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


@attrs.frozen
class SessionInfo:
    """A snapshot of one session (from ``pool.list_sessions()``).

    Attributes:
        id: the session id.
        worker_id: the worker it is bound to (None until bound, or after a prefer-session's
            worker died).
        affinity: ``"strict"`` or ``"prefer"``.
        calls: calls made in the session.
        in_flight: calls running now.
        idle: seconds since the last call started or ended.
        ttl: idle seconds before it expires, or None.
        metadata: the metadata given at creation.
        lost: why a strict session was lost, or None.
    """

    id: str
    worker_id: str | None
    affinity: str
    calls: int
    in_flight: int
    idle: float
    ttl: float | None
    metadata: dict[str, Any]
    lost: str | None


def session_info(record: SessionRecord, now: float) -> SessionInfo:
    return SessionInfo(
        id=record.id,
        worker_id=record.worker,
        affinity=record.affinity,
        calls=record.calls,
        in_flight=record.in_flight,
        idle=now - record.last_used,
        ttl=record.ttl,
        metadata=dict(record.metadata),
        lost=record.lost,
    )


@contextmanager
def _as_invalid_variable() -> Iterator[None]:
    try:
        yield
    except VariableError as exc:
        raise InvalidVariable(exc.name, exc.constraint, str(exc)) from None


@attrs.define(eq=False, repr=False)
class Session:
    """A session: its calls run on its worker (strict) or prefer it (prefer).

    Get one from ``pool.session()`` or ``pool.open_session()``; do not construct it.

    Guarantees, strict affinity: every call runs on the bound worker, in submission order
    (queued behind that worker's other calls when it is busy, never moved elsewhere). If that
    worker dies, calls running there raise ``WorkerCrashed`` and every later call raises
    ``SessionLost``. Prefer affinity: calls use the bound worker when it has a free slot and
    any worker otherwise; nothing is guaranteed about where state lives.
    """

    _pool: Pool
    _record: SessionRecord

    def __repr__(self) -> str:
        r = self._record
        return f"<Session {r.id!r} {r.affinity} worker={r.worker!r} calls={r.calls}>"

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def worker_id(self) -> str | None:
        return self._record.worker  # type: ignore[no-any-return]

    @property
    def affinity(self) -> str:
        return self._record.affinity

    @property
    def metadata(self) -> dict[str, Any]:
        return self._record.metadata

    @property
    def lost(self) -> bool:
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
    ) -> Any:
        """``pool.execute`` within this session (see the class docstring for placement)."""
        return await self._pool._execute(
            tool, args, timeout, idempotent, on_progress, self._record, kill_on_cancel
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
    ) -> AbstractAsyncContextManager[Stream]:
        """``pool.stream`` within this session."""
        return self._pool._open_stream(
            tool, args, timeout, idle_timeout, window, on_progress, self._record
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
            type: "int", "float", "bool", "str", "list", "dict", "bytes" or "ndarray".
            min, max: bounds for int and float. choices: the allowed values.
            max_length: longest str, list, dict or bytes.

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
        """The variable's value (InvalidVariable if it was never registered)."""
        with _as_invalid_variable():
            return self._record.variables.get(name)

    def set_variable(self, name: str, value: Any) -> None:
        """Change a variable; InvalidVariable names the rule a bad value breaks."""
        with _as_invalid_variable():
            self._record.variables.set(name, value)

    def delete_variable(self, name: str) -> None:
        with _as_invalid_variable():
            self._record.variables.delete(name)

    def list_variables(self) -> list[Variable]:
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
        """End the session: the adapter's ``on_session_end`` runs in its worker."""
        self._pool.close_session(self.id)
