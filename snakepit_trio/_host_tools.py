"""Registering host tools, on a pool or a session: ``HostToolRegistrar``, which both are.

The engine keeps and runs them (``_engine/_host_calls.py``); the context they receive,
``HostToolContext``, lives with ``Pool`` (it names it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from ._engine._engine import Engine
from ._engine._host_tools import make_host_tool
from ._errors import SessionLost
from ._tools import ToolSpec

F = TypeVar("F", bound=Callable[..., Any])


class HostToolRegistrar:
    """Host-tool registration, for ``Pool`` (every call sees its host tools) and ``Session``
    (only its calls see them; they shadow the pool's of the same name and go when it closes)."""

    __slots__ = ()
    _engine: Engine

    def _host_scope(self) -> str | None:
        """None for the pool's host tools, or the session whose calls alone see them.

        Raises:
            SessionLost: the session is closed (its host tools went with it).
        """
        raise NotImplementedError

    def register_host_tool(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> ToolSpec:
        """Let workers' tools call ``fn`` (``ctx.call_host_tool(name, args)``): every call's,
        when registered on the pool; on a session, only that session's calls (shadowing a
        pool host tool of the same name for them, until the session closes).

        Async functions run in the pool's nursery, sync ones in a thread
        (``trio.to_thread``); at most ``max_host_tool_calls`` run at once. Parameters and
        their types come from the signature, as for worker tools, and calls are checked
        against them; a parameter annotated ``HostToolContext`` (or named ``ctx``) gets the
        calling call's context. A host tool runs under its call's deadline and is
        cancelled with it. What it raises reaches the worker's tool as ``HostToolError``.
        Registering a name again (at the same level) replaces the tool.

        Args:
            fn: the function (sync or async; not a generator).
            name: the name workers call it by (default: its ``__name__``).
            description: shown in ``host_tools()`` (default: its docstring's first line).

        Returns:
            The tool's spec.

        Raises:
            TypeError: ``fn`` is not callable, is a generator, or has positional-only or
                ``*args`` parameters.
            ValueError: the name is empty or starts with ``"snakepit."`` (reserved).
            SessionLost: on a session that was closed or expired.
        """
        return register(self._engine, fn, name, description, self._host_scope())

    @overload
    def host_tool(self, fn: F, /) -> F: ...
    @overload
    def host_tool(
        self, /, *, name: str | None = None, description: str | None = None
    ) -> Callable[[F], F]: ...

    def host_tool(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> F | Callable[[F], F]:
        """``register_host_tool`` as a decorator: ``@pool.host_tool``,
        ``@session.host_tool(name=...)``.

        Args:
            fn: the function, when used bare.
            name, description: as for ``register_host_tool``.

        Returns:
            ``fn`` itself, registered; or a decorator that registers its function.

        Raises:
            The errors of ``register_host_tool``.
        """
        scope = self._host_scope()

        def mark(f: F) -> F:
            register(self._engine, f, name, description, scope)
            return f

        return mark(fn) if fn is not None else mark

    def unregister_host_tool(self, name: str) -> bool:
        """Remove a host tool registered here (a session's leaves the pool's alone).

        Args:
            name: its name.

        Returns:
            True if it was registered here.

        Raises:
            Nothing.
        """
        try:
            scope = self._host_scope()
        except SessionLost:
            return False  # a closed session's host tools went with it
        return self._engine.host_calls.registry.unregister(name, scope)


def register(
    engine: Engine,
    fn: Callable[..., Any],
    name: str | None,
    description: str | None,
    session_id: str | None,
) -> ToolSpec:
    """Register ``fn`` for the pool (``session_id`` None) or one session; its spec.

    Raises:
        TypeError: not a function, a generator, or not callable by keyword.
        ValueError: an empty or reserved name.
    """
    tool = make_host_tool(fn, name, description)
    engine.host_calls.registry.register(tool, session_id)
    return tool.spec
