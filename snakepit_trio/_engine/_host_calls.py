"""Host calls: a worker's tool asked for a host tool; run it, answer once, cancel it with its call.

Rules:
- The frame handler only checks and starts: a host tool runs in a task of the pool's
  nursery (sync ones in a thread), never on the path that reads frames, so a host tool that
  waits for the pool (a nested call) cannot stop the answer it waits for from being read.
- Names resolve against the calling call's session (its own tools shadow the pool's), so a
  worker reaches only what that call may see; a call id that is not a call of that worker
  is a protocol violation (checked with the batch, ``_inbound.py``).
- A host tool runs under its call's deadline and is cancelled when the worker gives it up
  (HOST_CANCEL), when its call ends (its final frame) or is abandoned by its caller, and when
  the worker dies. It is answered exactly once (HOST_RESULT or HOST_ERROR), except when the
  worker gave it up or is gone, or its call has ended: then nobody waits for the answer.
- Running host tools are bounded (``max_host_tool_calls``); beyond that they wait their turn.
- A host tool runs with ``NESTING`` set, so a call it makes into the pool knows its chain of
  ancestor calls (see ``_reentry.py``).
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

import attrs
import trio

from .._config import PoolConfig
from .._core._dispatcher import Call, CallState
from .._core._sessions import SessionRecord
from .._core._variables import VariableError
from .._errors import InvalidArguments, PayloadTooLarge, ReentrancyError, SerializationError
from .._shared import _frames as w
from .._shared._codec import decode, encode
from .._supervision._worker import Worker
from .._tools import check_arguments
from ..telemetry._hub import Hub
from ._host_tools import HostTool, HostToolRegistry

log = logging.getLogger("snakepit_trio")

GET_VARIABLE = "snakepit.get_variable"
SET_VARIABLE = "snakepit.set_variable"


@attrs.frozen
class Nesting:
    """The calls a host tool runs inside, outermost first (set while it runs)."""

    calls: tuple[Call, ...]
    # The worker each ancestor call was running on, in the same order.
    workers: tuple[str, ...]

    @property
    def tools(self) -> tuple[str, ...]:
        return tuple(c.tool for c in self.calls)


NESTING: contextvars.ContextVar[Nesting | None] = contextvars.ContextVar(
    "snakepit_trio_nesting", default=None
)


@attrs.frozen
class HostCallInfo:
    """What a host tool's context is made from."""

    call: Call
    worker_id: str
    session: SessionRecord | None
    deadline: float | None
    meta: dict[str, Any] | None = None  # HOST_CALL's: the worker's trace context


class HostCallsHost(Protocol):
    """What running host tools needs of the engine."""

    config: PoolConfig
    nursery: trio.Nursery
    telemetry: Hub

    def channel_send(self, worker_id: str, frame: list[Any]) -> bool: ...
    def session_record(self, session_id: str) -> SessionRecord | None: ...
    def kill_worker(self, worker: Worker, reason: str, cause: str) -> None: ...


class _Open:
    """One host call in progress."""

    __slots__ = ("call", "scope", "silent")

    def __init__(self, call: Call, scope: trio.CancelScope) -> None:
        self.call = call
        self.scope = scope
        self.silent = False  # nobody waits for its answer any more


class HostCalls:
    def __init__(self, engine: HostCallsHost) -> None:
        self._engine = engine
        self.registry = HostToolRegistry()
        # Builds the HostToolContext a host tool may ask for (the public handles make it;
        # this layer does not know them).
        self.make_context: Callable[[HostCallInfo], Any] | None = None
        self._open: dict[tuple[str, int], _Open] = {}
        self._by_call: dict[int, set[tuple[str, int]]] = {}
        # Calls waiting in a host tool: call id -> open host calls (re-entrancy reads it).
        self.parked: dict[int, int] = {}
        limit = engine.config.max_host_tool_calls
        self._limiter = trio.CapacityLimiter(limit)
        # Sync host tools' threads, apart from Trio's default limiter (which the pool's own
        # cleanup uses): a cancelled sync host tool cannot be interrupted, and its thread
        # keeps its token here until it returns.
        self._threads = trio.CapacityLimiter(limit)

    # --- frames from a worker ------------------------------------------------------------
    def on_host_call(self, worker: Worker, frame: w.HostCall, call: Call) -> None:
        key = (worker.id, frame.id)
        assert key not in self._open, "check_batch refuses a reused host call id"
        send = partial(self._answer_now, worker.id, frame.id)
        if call.state is CallState.ABANDONED:
            send(
                w.host_error(
                    frame.id, "Cancelled", "the calling call was cancelled", w.KIND_CANCELLED
                )
            )
            return
        session_id = call.handle.session_id
        if frame.tool in (GET_VARIABLE, SET_VARIABLE):
            send(self._variable(frame, session_id))
            return
        tool = self.registry.resolve(frame.tool, session_id)
        if tool is None:
            names = ", ".join(sorted(self.registry.visible(session_id))) or "none"
            send(
                w.host_error(
                    frame.id,
                    "UnknownHostTool",
                    f"no host tool {frame.tool!r} for this call; it may call: {names}",
                    w.KIND_UNKNOWN_TOOL,
                )
            )
            return
        try:
            args = {} if not frame.args else decode(frame.args, what=f"arguments of {frame.tool!r}")
            check_arguments(tool.spec, args)
        except SerializationError as exc:
            send(w.host_error(frame.id, "SerializationError", str(exc), w.KIND_SERIALIZATION))
            return
        except InvalidArguments as exc:
            send(w.host_error(frame.id, "InvalidArguments", str(exc), w.KIND_INVALID_ARGUMENTS))
            return
        deadline = call.handle.call_deadline
        opened = _Open(call, trio.CancelScope(deadline=deadline))
        self._open[key] = opened
        self._by_call.setdefault(call.id, set()).add(key)
        self.parked[call.id] = self.parked.get(call.id, 0) + 1
        info = HostCallInfo(
            call,
            worker.id,
            None if session_id is None else self._engine.session_record(session_id),
            None if deadline == math.inf else deadline,
            frame.meta,
        )
        self._engine.nursery.start_soon(self._run, key, tool, args, opened, info)

    def is_open(self, worker_id: str, hcid: int) -> bool:
        return (worker_id, hcid) in self._open

    def on_host_tools(self, worker: Worker, frame: w.HostTools, call: Call) -> None:
        tools = self.registry.visible(call.handle.session_id)
        listing = [
            {
                "name": t.spec.name,
                "description": t.spec.description,
                "params": [
                    {"name": p.name, "type": p.type, "required": p.required} for p in t.spec.params
                ],
            }
            for t in sorted(tools.values(), key=lambda t: t.spec.name)
        ]
        self._answer_now(worker.id, frame.id, self._result(frame.id, "host tool list", listing))

    def on_host_cancel(self, worker: Worker, frame: w.HostCancel) -> None:
        opened = self._open.get((worker.id, frame.id))
        if opened is not None:  # else it was answered already: the answer crossed this
            opened.silent = True
            opened.scope.cancel()

    # --- calls and workers ending ----------------------------------------------------------
    def call_ended(self, call_id: int) -> None:
        """The call's final frame came: what it left open is cancelled, unanswered."""
        for key in self._by_call.get(call_id, ()):
            opened = self._open[key]
            opened.silent = True
            opened.scope.cancel()

    def call_abandoned(self, call_id: int) -> None:
        """The caller gave up: its host tools are cancelled now (their ``finally`` runs), not
        only when the worker hears of it; the worker is told they were cancelled."""
        for key in self._by_call.get(call_id, ()):
            self._open[key].scope.cancel()

    def worker_gone(self, worker_id: str) -> None:
        for key, opened in self._open.items():
            if key[0] == worker_id:
                opened.silent = True
                opened.scope.cancel()

    # --- running one -----------------------------------------------------------------------
    async def _run(
        self,
        key: tuple[str, int],
        tool: HostTool,
        args: dict[str, Any],
        opened: _Open,
        info: HostCallInfo,
    ) -> None:
        hcid = key[1]
        answer: list[Any] | None = None
        started = trio.current_time()
        try:
            with opened.scope:
                # Not NESTING.get(): this task was spawned from the frame reader, whose
                # context it copied; the calling call carries its own ancestors.
                outer: Nesting | None = info.call.handle.nesting
                ancestors = (
                    Nesting((info.call,), (info.worker_id,))
                    if outer is None
                    else Nesting((*outer.calls, info.call), (*outer.workers, info.worker_id))
                )
                NESTING.set(ancestors)  # this task's own context: nothing else sees it
                if tool.context_param is not None and self.make_context is not None:
                    args[tool.context_param] = self.make_context(info)
                hub = self._engine.telemetry
                if hub.on:
                    hub.emit("host_tool.start", {}, _about(tool, info))
                # Under the worker's span (a traced call): the calls it makes are its children.
                with hub.span_from_meta(f"host_tool {tool.spec.name}", info.meta):
                    if outer is None:
                        async with self._limiter:
                            value = await self._call(tool, args)
                    else:
                        # Under a nested call: an ancestor's host tool holds a slot and waits
                        # for this one, which must not wait for one in turn (it could be it).
                        value = await self._call(tool, args)
                answer = self._result(hcid, tool.spec.name, value)
            if answer is None:  # cancelled: the worker gave up, its call ended or timed out
                answer = w.host_error(
                    hcid,
                    "Cancelled",
                    "the calling call was cancelled or its deadline passed",
                    w.KIND_CANCELLED,
                )
        except ReentrancyError as exc:  # a nested call it made could only wait for itself
            answer = w.host_error(hcid, "ReentrancyError", str(exc), w.KIND_REENTRANCY)
        except (Exception, SystemExit, GeneratorExit) as exc:
            # The host tool's failure, reported to the worker's tool (SystemExit too: a
            # tool's exit ends that call, not the pool, as in workers). Cancellation and
            # KeyboardInterrupt go on: they are not the tool's.
            answer = w.host_error(hcid, _type_name(exc), _text(exc), w.KIND_REMOTE)
        finally:
            self._close(key, opened)
        if self._engine.telemetry.on:
            _report(self._engine.telemetry, tool, info, trio.current_time() - started, answer)
        if not opened.silent:
            self._engine.channel_send(key[0], answer)

    async def _call(self, tool: HostTool, args: dict[str, Any]) -> Any:
        if tool.is_async:
            return await tool.fn(**args)
        return await trio.to_thread.run_sync(
            partial(tool.fn, **args), abandon_on_cancel=True, limiter=self._threads
        )

    def _close(self, key: tuple[str, int], opened: _Open) -> None:
        del self._open[key]
        call_id = opened.call.id
        keys = self._by_call[call_id]
        keys.discard(key)
        if not keys:
            del self._by_call[call_id]
        left = self.parked[call_id] - 1
        if left:
            self.parked[call_id] = left
        else:
            del self.parked[call_id]

    def _answer_now(self, worker_id: str, hcid: int, frame: list[Any]) -> None:
        self._engine.channel_send(worker_id, frame)

    def _result(self, hcid: int, tool: str, value: Any) -> list[Any]:
        try:
            payload = encode(
                value,
                what=f"result of host tool {tool!r}",
                limit=self._engine.config.max_payload_bytes,
            )
        except (SerializationError, PayloadTooLarge) as exc:
            return w.host_error(hcid, type(exc).__name__, str(exc), w.KIND_SERIALIZATION)
        return w.host_result(hcid, payload)

    def _variable(self, frame: w.HostCall, session_id: str | None) -> list[Any]:
        """A session variable read or written for a tool (answered at once, on the host)."""
        try:
            args = decode(frame.args, what="a variable request") if frame.args else {}
        except SerializationError as exc:
            return w.host_error(frame.id, "SerializationError", str(exc), w.KIND_SERIALIZATION)
        name = args.get("name") if type(args) is dict else None
        if type(name) is not str:
            return w.host_error(
                frame.id,
                "InvalidArguments",
                "a variable request needs a str 'name'",
                w.KIND_INVALID_ARGUMENTS,
            )
        record = None if session_id is None else self._engine.session_record(session_id)
        if record is None:
            reply: dict[str, Any] = {
                "error": {
                    "name": name,
                    "constraint": "session",
                    "message": (
                        f"variable {name!r}: this call belongs to no open session; call the "
                        "tool through a session (pool.session(...)) to use session variables"
                    ),
                }
            }
        else:
            try:
                if frame.tool == GET_VARIABLE:
                    reply = {"value": record.variables.get(name)}
                else:
                    record.variables.set(name, args.get("value"))
                    reply = {}
            except VariableError as exc:
                reply = {
                    "error": {"name": exc.name, "constraint": exc.constraint, "message": str(exc)}
                }
            except Exception as exc:  # a value its rules cannot even be checked against
                return w.host_error(frame.id, _type_name(exc), _text(exc), w.KIND_REMOTE)
        return self._result(frame.id, frame.tool, reply)


def _about(tool: HostTool, info: HostCallInfo) -> dict[str, Any]:
    return {
        "tool": tool.spec.name,
        "call_id": info.call.id,
        "session_id": None if info.session is None else info.session.id,
        "worker_id": info.worker_id,
    }


def _report(hub: Hub, tool: HostTool, info: HostCallInfo, duration: float, answer: Any) -> None:
    """``host_tool.exception`` (when it failed) and ``host_tool.stop``."""
    metadata = _about(tool, info)
    if answer[0] == w.HOST_RESULT:
        outcome = "ok"
    else:
        outcome = answer[4]  # the HOST_ERROR's kind: remote, cancelled, reentrancy, ...
        hub.emit(
            "host_tool.exception", {"duration": duration}, {**metadata, "error_type": answer[2]}
        )
    hub.emit("host_tool.stop", {"duration": duration}, {**metadata, "outcome": outcome})


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # an exception whose __str__ raises is still reported
        return f"<unprintable {type(exc).__name__}>"


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
