"""Registering host tools, on a pool or a session (``Pool.host_tool``, ``Session.host_tool``).

The engine keeps and runs them (``_engine/_host_calls.py``); the context they receive,
``HostToolContext``, lives with ``Pool`` (it names it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._engine._engine import Engine
from ._engine._host_tools import make_host_tool
from ._tools import ToolSpec

F = TypeVar("F", bound=Callable[..., Any])


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


def decorate(
    engine: Engine,
    session_id: str | None,
    fn: F | None,
    name: str | None,
    description: str | None,
) -> F | Callable[[F], F]:
    """What ``@x.host_tool`` (bare, or with options) returns."""

    def mark(f: F) -> F:
        register(engine, f, name, description, session_id)
        return f

    return mark(fn) if fn is not None else mark
