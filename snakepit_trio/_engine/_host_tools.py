"""Host tools: functions registered on the host that workers' tools may call.

The pool's tools are visible to every call; a session's shadow the pool's of the same name
for that session's calls only, and go when the session closes. A call without a session sees
the pool's. Specs come from signatures as for worker tools (``_shared/_signature.py``); a
parameter annotated ``HostToolContext`` (or named ``ctx``, unannotated) receives the context
and is not part of the spec.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs

from .._core import _checks as checks
from .._shared._signature import read_signature
from .._tools import ParamSpec, ToolSpec

# Names the host serves itself (see proto: a session's variables); no tool may take them.
RESERVED_PREFIX = "snakepit."


@attrs.frozen
class HostTool:
    spec: ToolSpec
    fn: Callable[..., Any]
    is_async: bool
    context_param: str | None


def make_host_tool(fn: Callable[..., Any], name: str | None, description: str | None) -> HostTool:
    """A host tool from a function.

    Raises:
        TypeError: ``fn`` is not callable, is a generator, or takes positional-only or
            ``*args`` parameters (host tools are called by keyword).
        ValueError: the name is not a valid tool name, or reserved.
    """
    if not callable(fn):
        raise TypeError(f"a host tool must be a function, got {type(fn).__name__}")
    func = inspect.unwrap(fn)
    tool_name = checks.text(
        "host tool name", name if name is not None else getattr(func, "__name__", ""), empty=False
    )
    assert tool_name is not None
    checks.text("description", description, none="the docstring's first line")
    if tool_name.startswith(RESERVED_PREFIX):
        raise ValueError(
            f"host tool name {tool_name!r}: names starting with {RESERVED_PREFIX!r} are the "
            "pool's own; choose another"
        )
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise TypeError(f"host tool {tool_name!r} is a generator; host tools return one value")
    sig = read_signature(fn, f"host tool {tool_name!r}", _is_context)
    params = [ParamSpec(p.name, p.type, p.required, p.default) for p in sig.params]
    doc = inspect.getdoc(func) or ""
    spec = ToolSpec(
        name=tool_name,
        description=description if description is not None else doc.split("\n")[0],
        streaming=False,
        params=tuple(params),
        accepts_extra=sig.accepts_extra,
    )
    is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  # an object with an async __call__
    )
    return HostTool(spec, fn, is_async, sig.context_param)


def _is_context(annotation: Any) -> bool:
    # By name: the class lives with the public handles, which this layer does not import.
    return bool(getattr(annotation, "__name__", annotation) == "HostToolContext")


class HostToolRegistry:
    """The pool's host tools and each session's."""

    def __init__(self) -> None:
        self.pool: dict[str, HostTool] = {}
        self.sessions: dict[str, dict[str, HostTool]] = {}

    def register(self, tool: HostTool, session_id: str | None) -> None:
        """Add ``tool``, replacing one of the same name at the same level."""
        if session_id is None:
            self.pool[tool.spec.name] = tool
        else:
            self.sessions.setdefault(session_id, {})[tool.spec.name] = tool

    def unregister(self, name: str, session_id: str | None) -> bool:
        """Remove a tool; False if there was none of that name at that level."""
        tools = self.pool if session_id is None else self.sessions.get(session_id, {})
        return tools.pop(name, None) is not None

    def resolve(self, name: str, session_id: str | None) -> HostTool | None:
        if session_id is not None:
            own = self.sessions.get(session_id)
            if own is not None and name in own:
                return own[name]
        return self.pool.get(name)

    def visible(self, session_id: str | None) -> dict[str, HostTool]:
        """What a call of ``session_id`` (or of no session) may call, by name."""
        tools = dict(self.pool)
        if session_id is not None:
            tools.update(self.sessions.get(session_id, {}))
        return tools

    def session_closed(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
