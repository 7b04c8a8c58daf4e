"""ToolContext: what a running tool knows about its call, and how it reaches the host."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from .._errors import HostToolsUnavailable, InvalidVariable
from ._events import Route, Span, emit_event, trace_meta
from ._host_calls import GET_VARIABLE, SET_VARIABLE, HostCalls


class ToolContext:
    """Passed to a tool that declares a ``ToolContext`` parameter (or one named ``ctx``).

    Attributes:
        request_id: the call's id, unique within the worker's connection.
        session_id: the session the call belongs to, or ``None``.
        deadline: ``time.monotonic()`` value after which the host stops waiting, or ``None``
            (in ``snakepit_trio.testing``, a value of the virtual clock).
    """

    __slots__ = (
        "_cancelled",
        "_clock",
        "_host",
        "_host_tools",
        "_progress",
        "_route",
        "_trace",
        "deadline",
        "request_id",
        "session_id",
    )

    def __init__(
        self,
        request_id: int,
        session_id: str | None,
        deadline: float | None,
        progress: Callable[[float, float | None, str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        host: HostCalls | None = None,
    ) -> None:
        self.request_id = request_id
        self.session_id = session_id
        self.deadline = deadline
        # A plain flag: written on the loop, read by the tool's thread. One attribute store
        # is atomic in CPython with a GIL and in free-threaded builds alike (objects guard
        # their own attributes there); the thread may see it a moment late, which a flag
        # that is only ever set allows.
        self._cancelled = False
        self._progress = progress
        self._clock = clock  # what deadline is measured on
        self._host = host  # None: a context made outside a worker connection
        self._host_tools: dict[str, dict[str, Any]] | None = None  # cached per call
        # Its events' way to the host, and its trace: set as the call starts (_events.py).
        self._route: Route | None = None
        self._trace: Any = None

    @property
    def cancelled(self) -> bool:
        """True once the host cancelled this call (or it timed out).

        Sync tools run in threads and cannot be interrupted: long loops should check this
        flag and return early. Async tools are cancelled outright and generators closed.
        """
        return self._cancelled

    def time_remaining(self) -> float | None:
        """Seconds left until the host stops waiting for this call.

        Returns:
            Seconds until the deadline (negative once it has passed), or None without one.

        Raises:
            Nothing.
        """
        return None if self.deadline is None else self.deadline - self._clock()

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress to the host; safe to call from any thread, never blocks.

        The caller's ``on_progress`` gets it as a ``Progress``.

        Args:
            done: work done so far, in the tool's own unit (any real number).
            total: the total, when the tool knows it.
            message: a short human-readable note (any value is sent as its ``str``; at
                most 4096 characters of it arrive).

        Raises:
            TypeError: ``done`` or ``total`` is not a real number. After the call was
                cancelled, reports are dropped unchecked.
        """
        if self._progress is not None and not self.cancelled:
            self._progress(done, total, message)

    # --- host tools (tools registered on the host, see Pool.register_host_tool) ------------
    def call_host_tool(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """Call a host tool and wait for its value; in sync tools only (it blocks).

        ``ctx.host.<name>(**args)`` says the same.

        Host tools are the pool's (``pool.register_host_tool``) and this call's session's
        (``session.register_host_tool``, which shadow the pool's of the same name). The host
        tool gets what is left of this call's deadline.

        Args:
            name: the host tool's name.
            args: its keyword arguments (msgpack values, checked against its parameters).

        Returns:
            What the host tool returned.

        Raises:
            UnknownHostTool: no host tool of that name is visible to this call.
            HostToolError: it raised on the host (``kind="remote"``, with its type and
                message), the arguments do not fit it (``"invalid_arguments"``), this
                call was cancelled or its deadline passed (``"cancelled"``: a blocked
                call is woken at once), a value cannot be encoded (``"serialization"``),
                or a nested call it made could only wait for itself (``"reentrancy"``).
            HostToolsUnavailable: the host serves no host tools.
            RuntimeError: called on the worker's event-loop thread (an async tool); use
                ``await ctx.acall_host_tool(...)`` there.
        """
        bridge = self._bridge(name)
        return bridge.call_sync(self.request_id, name, _args(name, args), trace_meta(self))

    async def acall_host_tool(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """Call a host tool from an async tool (``await ctx.ahost.<name>(**args)`` says the
        same).

        Args:
            name: the host tool's name.
            args: its keyword arguments.

        Returns:
            What the host tool returned.

        Raises:
            The errors of ``call_host_tool`` (but no RuntimeError). Cancelling the awaiting
            task cancels the host tool.
        """
        bridge = self._bridge(name)
        meta = trace_meta(self)
        return await bridge.call_async(self.request_id, name, _args(name, args), meta)

    @property
    def host(self) -> HostTools:
        """Host tools as methods, for sync tools: ``ctx.host.lookup(user_id=7)``."""
        return HostTools(self, asynchronous=False)

    @property
    def ahost(self) -> HostTools:
        """Host tools as awaitable methods, for async tools: ``await ctx.ahost.lookup(...)``."""
        return HostTools(self, asynchronous=True)

    def host_tools(self) -> dict[str, dict[str, Any]]:
        """The host tools this call may use (asked once per call, then cached).

        Returns:
            ``{name: {"name", "description", "params": [{"name", "type", "required"}]}}``.

        Raises:
            HostToolsUnavailable: the host serves no host tools.
            RuntimeError: called on the worker's event-loop thread; use
                ``await ctx.ahost_tools()`` there.
        """
        if self._host_tools is None:
            self._host_tools = _by_name(self._bridge("host_tools").list_sync(self.request_id))
        return self._host_tools

    async def ahost_tools(self) -> dict[str, dict[str, Any]]:
        """``host_tools()`` for async tools.

        Returns:
            As ``host_tools()``.

        Raises:
            HostToolsUnavailable: the host serves no host tools.
        """
        if self._host_tools is None:
            listing = await self._bridge("host_tools").list_async(self.request_id)
            self._host_tools = _by_name(listing)
        return self._host_tools

    @property
    def session(self) -> SessionVariables:
        """This call's session's typed variables (kept on the host): ``get_variable``,
        ``set_variable`` in sync tools, ``aget_variable``, ``aset_variable`` in async ones."""
        return SessionVariables(self)

    def _bridge(self, tool: str) -> HostCalls:
        if self._host is None:  # a call by gRPC's Execute: no connection to answer on
            raise HostToolsUnavailable(tool)
        return self._host

    def emit(
        self,
        name: str,
        measurements: dict[str, float] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Send a telemetry event to the host; safe from any thread, never blocks.

        The host's handlers get it as ``adapter.<name>``, its metadata with ``pool``,
        ``worker_id``, ``call_id``, ``tool`` and ``session_id`` added (those keys are the
        host's).

        Args:
            name: dotted words of letters, digits, ``_`` or ``-`` (``"model.inference"``).
            measurements: numbers by name (seconds, bytes, counts).
            metadata: str, number, bool or None values by name (strings are cut to 4096
                characters).

        Raises:
            TypeError: a value of the wrong type (the message names its key).
            ValueError: a malformed name, a NaN measurement, or more than 64 entries.
        """
        emit_event(self, name, measurements, metadata)

    def span(
        self, name: str, **attributes: str | float | bool | None
    ) -> AbstractContextManager[None]:
        """Time a block: ``with ctx.span("tokenize", model="small"): ...``.

        On leaving it the host gets ``adapter.<name>.stop`` with the block's ``duration``
        in seconds and ``attributes`` as metadata, preceded by ``adapter.<name>.exception``
        (with ``error_type``) when the block raised; the exception propagates. In a call
        traced with OpenTelemetry it is also a span, a child of the call's.

        Args:
            name: as for ``emit`` (at most 190 characters).
            **attributes: str, number, bool or None values.

        Returns:
            A context manager (not reentrant: make one per block).

        Raises:
            TypeError, ValueError: as for ``emit``.
        """
        return Span(self, name, attributes)

    def _cancel(self) -> None:
        self._cancelled = True
        if self._host is not None:
            self._host.call_cancelled(self.request_id)  # wakes a sync tool blocked on the host


class HostTools:
    """``ctx.host`` / ``ctx.ahost``: each attribute is a host tool to call by keyword."""

    __slots__ = ("_async", "_ctx")

    def __init__(self, ctx: ToolContext, *, asynchronous: bool) -> None:
        self._ctx = ctx
        self._async = asynchronous

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        ctx = self._ctx
        if self._async:

            async def acall(**kwargs: Any) -> Any:
                return await ctx.acall_host_tool(name, kwargs)

            return acall

        def call(**kwargs: Any) -> Any:
            return ctx.call_host_tool(name, kwargs)

        return call


class SessionVariables:
    """``ctx.session``: the variables of the call's session, read and written on the host
    with the rules they were registered with (``Session.register_variable``)."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: ToolContext) -> None:
        self._ctx = ctx

    def get_variable(self, name: str) -> Any:
        """A variable's value (sync tools).

        Args:
            name: the variable's name.

        Returns:
            Its current value.

        Raises:
            InvalidVariable: it was never registered, or the call has no session.
            HostToolError: the call was cancelled, or the host serves no host tools.
        """
        return _variable_reply(name, self._ctx.call_host_tool(GET_VARIABLE, {"name": name}))

    def set_variable(self, name: str, value: Any) -> None:
        """Change a variable's value (sync tools).

        Args:
            name: the variable's name.
            value: the new value; it must keep the variable's rules.

        Raises:
            InvalidVariable: it was never registered, the value breaks a rule (named), or
                the call has no session.
            HostToolError: the call was cancelled, or the host serves no host tools.
        """
        reply = self._ctx.call_host_tool(SET_VARIABLE, {"name": name, "value": value})
        _variable_reply(name, reply)

    async def aget_variable(self, name: str) -> Any:
        """``get_variable`` for async tools.

        Args:
            name: the variable's name.

        Returns:
            Its current value.

        Raises:
            As ``get_variable``.
        """
        reply = await self._ctx.acall_host_tool(GET_VARIABLE, {"name": name})
        return _variable_reply(name, reply)

    async def aset_variable(self, name: str, value: Any) -> None:
        """``set_variable`` for async tools.

        Args:
            name: the variable's name.
            value: the new value.

        Raises:
            As ``set_variable``.
        """
        reply = await self._ctx.acall_host_tool(SET_VARIABLE, {"name": name, "value": value})
        _variable_reply(name, reply)


def _variable_reply(name: str, reply: Any) -> Any:
    """The value of a variable request's reply ``{"value": v}``, or its error raised."""
    if type(reply) is dict and "error" in reply:
        error = reply["error"]
        raise InvalidVariable(
            str(error.get("name", name)), str(error.get("constraint", "")), str(error["message"])
        )
    return reply.get("value") if type(reply) is dict else None


def _args(name: str, args: Any) -> dict[str, Any]:
    if args is None:
        return {}
    if type(args) is not dict:
        raise TypeError(
            f"arguments of host tool {name!r} must be a dict of keyword arguments or None, "
            f"not {type(args).__name__}"
        )
    return args


def _by_name(listing: Any) -> dict[str, dict[str, Any]]:
    return {spec["name"]: spec for spec in listing} if type(listing) is list else {}
