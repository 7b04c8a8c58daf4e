"""Module-level functions served as tools (``open_pool(tools=["pkg.mod:score"])``).

Each ``--tool`` entry names a module and one of its top-level names; the worker imports the
module and serves the function beside the adapter's ``@tool`` methods (or alone, on a bare
``Adapter``). A function is read as a method is: its signature gives the parameter specs,
``async def`` runs on the loop, a plain ``def`` in a tool thread, a generator streams, and a
``ToolContext`` parameter (or one named ``ctx``) receives the call's context. The tool's name
is the entry's name after the colon; ``@tool(name=..., description=..., exclusive=...)`` on
the function changes it as it does on a method. The template imports the same modules, so
forked workers find them imported already.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from .._core._checks import a_type
from .._shared._functions import split_entry
from ._adapter import (
    _MARK,
    AdapterLoadError,
    ToolInfo,
    ToolOptions,
    collect_tools,
    import_module,
    missing_name,
    tool_info,
)

_PLAIN = ToolOptions(name=None, description=None, streaming=None)


@attrs.frozen
class FunctionTool:
    """A tools entry, loaded: the function and the tool's options."""

    entry: str  # "package.module:function", as the pool named it
    fn: Callable[..., Any]
    options: ToolOptions

    @property
    def name(self) -> str:
        return self.options.name or self.entry.partition(":")[2]


def load_functions(entries: Sequence[str]) -> list[FunctionTool]:
    """Import each entry's module and find its function.

    Raises:
        AdapterLoadError: an entry of another form, a module that cannot be imported (or
            raised while it was), no such name in it, or a name that is not a function;
            the message's first line names the entry.
    """
    return [_load(entry) for entry in entries]


def _load(entry: str) -> FunctionTool:
    try:
        module_name, name = split_entry(entry)
    except ValueError as exc:
        raise AdapterLoadError(str(exc)) from None
    module = import_module(module_name, f"module {module_name!r} of tools entry {entry!r}")
    try:
        fn = getattr(module, name)
    except AttributeError:
        raise AdapterLoadError(_no_function(module, module_name, name, entry)) from None
    if isinstance(fn, type):
        raise AdapterLoadError(
            f"tools entry {entry!r} is a class, not a function\n"
            "An Adapter subclass is served as the pool's adapter (open_pool('module:Class', "
            "tools=[...])); any other class is used from a function that tools names."
        )
    if not callable(fn):
        raise AdapterLoadError(
            f"tools entry {entry!r} is {a_type(fn)}, not a function\n"
            "Name a function defined with def (or async def) at the top level of the module."
        )
    options = getattr(fn, _MARK, None)
    return FunctionTool(entry, fn, options if isinstance(options, ToolOptions) else _PLAIN)


def _no_function(module: types.ModuleType, module_name: str, name: str, entry: str) -> str:
    functions = sorted(
        key
        for key, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module_name and not key.startswith("_")
    )
    return missing_name(module, module_name, name, functions, "Functions defined", entry)


def collect_all(adapter: object, functions: Sequence[FunctionTool]) -> dict[str, ToolInfo]:
    """The ``@tool`` methods of ``adapter`` and the ``functions``, by tool name.

    Raises:
        TypeError: two tools share a name (the message names both, and how to rename one),
            or a tool's signature cannot be called by keyword (the message names it).
    """
    tools = collect_tools(adapter)
    owners = {
        name: f"{type(adapter).__qualname__}.{getattr(info.fn, '__name__', name)} of adapter "
        f"'{type(adapter).__module__}:{type(adapter).__qualname__}'"
        for name, info in tools.items()
    }
    for function in functions:
        name = function.name
        if name in tools:
            raise TypeError(
                f"tools entry {function.entry!r} makes a tool named {name!r}, and so does "
                f"{owners[name]}; rename one with @tool(name=...)"
            )
        tools[name] = tool_info(
            name, function.fn, function.options, what=f"tools entry {function.entry!r}"
        )
        owners[name] = f"tools entry {function.entry!r}"
    return tools
