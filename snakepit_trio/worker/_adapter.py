"""The Adapter base class and the @tool decorator; tool specs come from signatures.

An adapter is a class whose ``@tool`` methods the worker serves. Each tool's parameter specs
are derived from its signature here and sent to the host, which validates calls before
dispatch; so a typo in an argument name fails at the call site, not in the worker.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import pkgutil
import sys
import types
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, overload

import attrs

from .._shared._signature import read_signature
from ._context import ToolContext

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__snakepit_tool__"


class Adapter:
    """Base class for worker adapters.

    Subclass it, decorate methods with :func:`tool`, and start workers with
    ``open_pool("pkg.module:MyAdapter")``. One instance lives in each worker process.

    Attributes:
        fork_safe: whether workers may be forked from a template process that imported
            this adapter's module (``start_method="auto"``). Set it to False when importing
            the module sets up state a forked child must not share (a CUDA context, open
            connections, locks held by threads); workers then start as fresh interpreters.
            Threads started, files or sockets left open and CUDA initialised at import are
            detected without it.
        thread_safe: whether this adapter's tools may run in several threads of one worker
            at once (``worker_capacity`` > 1 runs that many calls at once; sync tools and
            sync generators each in a thread of their own, sharing ``self``). Set it to True
            once they are safe to (they guard shared state with locks, or keep none);
            ``profile="thread"`` requires it, and ``worker_capacity`` > 1 with sync tools
            on an adapter that does not declare it logs a warning. ``@tool(exclusive=True)``
            serialises one tool.
    """

    fork_safe: ClassVar[bool] = True
    thread_safe: ClassVar[bool] = False

    async def initialize(self) -> None:
        """Called once in each worker before it reports ready (load models here).

        Raises:
            Anything: the worker does not start, and ``open_pool`` raises WorkerStartError
            with the worker's stderr (the traceback) in its message.
        """

    async def cleanup(self) -> None:
        """Called once on graceful shutdown, after in-flight calls have finished.

        Raises:
            Anything: it is logged in the worker, which stops all the same.
        """

    async def on_session_end(self, session_id: str) -> None:
        """A session bound to this worker was closed or expired: free its state here.

        Tools see their session as ``ctx.session_id``.

        Args:
            session_id: the session that ended.

        Raises:
            Anything: it is logged in the worker; the worker goes on serving.
        """


@attrs.frozen
class ToolOptions:
    name: str | None
    description: str | None
    streaming: bool | None
    exclusive: bool = False


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    streaming: bool | None = None,
    exclusive: bool = False,
) -> Callable[[F], F]: ...


def tool(
    fn: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    streaming: bool | None = None,
    exclusive: bool = False,
) -> F | Callable[[F], F]:
    """Mark an adapter method as a tool the host may call.

    On a module-level function that a pool serves (``open_pool(tools=["pkg.mod:fn"])``),
    it is optional: its options (name, description, streaming, exclusive) apply there too.

    Works on sync functions (run in a worker thread), ``async def`` functions (run on the
    worker's event loop), and sync or async generators (streamed chunk by chunk).

    Use it bare (``@tool``) or with options (``@tool(name="...")``).

    Args:
        fn: the method, when used bare.
        name: the tool's name (defaults to the method name).
        description: shown in ``pool.tools()`` (defaults to the docstring's first line).
        streaming: force streaming on or off (defaults to "is it a generator?").
        exclusive: run at most one call of this tool at a time in a worker (a lock per
            tool): with ``worker_capacity`` > 1, its calls wait for each other, holding
            their slots, while other tools' calls run beside them. For a stream, the call
            holds the lock until its generator is closed.

    Returns:
        ``fn`` itself, marked, when used bare; otherwise a decorator that marks its function.

    Raises:
        TypeError: ``exclusive`` is not a bool. A tool the worker cannot serve (a
            positional-only or ``*args`` parameter, ``streaming=True`` on a non-generator,
            two tools of one name) raises TypeError when the worker loads the adapter, and
            ``open_pool`` raises WorkerStartError.
    """
    if not isinstance(exclusive, bool):
        raise TypeError(f"exclusive must be a bool; got {exclusive!r} ({type(exclusive).__name__})")
    options = ToolOptions(
        name=name, description=description, streaming=streaming, exclusive=exclusive
    )

    def mark(f: F) -> F:
        setattr(f, _MARK, options)
        return f

    return mark(fn) if fn is not None else mark


@attrs.frozen
class ParamInfo:
    name: str
    type: str
    required: bool
    default: Any


@attrs.frozen
class ToolInfo:
    """A tool as the worker runtime sees it: the bound callable plus its spec."""

    name: str
    description: str
    streaming: bool
    is_async: bool
    params: tuple[ParamInfo, ...]
    accepts_extra: bool
    context_param: str | None
    fn: Callable[..., Any]
    exclusive: bool = False  # one call at a time (a lock per tool)
    # The parameters' names, once per tool rather than once per call (as ToolSpec's).
    _names: frozenset[str] = attrs.field(init=False, repr=False, eq=False, hash=False)

    @_names.default
    def _names_of_params(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params)

    @property
    def threaded(self) -> bool:
        """Its calls run in threads: a sync function (a tool thread) or a sync generator."""
        return not self.is_async


def check_arguments(info: ToolInfo, args: Any) -> tuple[str | None, str] | None:
    """Return ``(param, reason)`` when ``args`` cannot be passed to the tool, else None."""
    if not isinstance(args, dict):
        return None, f"expected a dict of keyword arguments, got {type(args).__name__}"
    names = info._names
    for key in args:
        if not isinstance(key, str):
            return None, f"argument names must be strings, got {key!r}"
        if key not in names and not info.accepts_extra:
            return key, f"unexpected argument; the tool takes {sorted(names) or 'no arguments'}"
    for p in info.params:
        if p.required and p.name not in args:
            return p.name, "missing required argument"
    return None


def _is_context(annotation: Any) -> bool:
    return annotation is ToolContext or annotation == "ToolContext"


def tool_info(
    attr_name: str, bound: Callable[..., Any], opts: ToolOptions, what: str = ""
) -> ToolInfo:
    """The spec of one tool: ``bound`` (a bound method or a function) named ``attr_name``
    unless ``opts`` names it; ``what`` names it in errors (default: the tool).

    Raises:
        TypeError: its signature cannot be called by keyword, or ``streaming=True`` on a
            function that is not a generator.
    """
    what = what or f"tool {attr_name!r}"
    func = inspect.unwrap(bound)
    sig = read_signature(bound, what, _is_context)
    params = [ParamInfo(p.name, p.type, p.required, p.default) for p in sig.params]
    accepts_extra, context_param = sig.accepts_extra, sig.context_param
    is_gen = inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func)
    streaming = is_gen if opts.streaming is None else opts.streaming
    if streaming and not is_gen:
        raise TypeError(f"{what} is marked streaming but is not a generator")
    doc = inspect.getdoc(func) or ""
    return ToolInfo(
        name=opts.name or attr_name,
        description=opts.description if opts.description is not None else doc.split("\n")[0],
        streaming=streaming,
        is_async=inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func),
        params=tuple(params),
        accepts_extra=accepts_extra,
        context_param=context_param,
        fn=bound,
        exclusive=opts.exclusive,
    )


def collect_tools(adapter: object) -> dict[str, ToolInfo]:
    """Find every ``@tool`` method of ``adapter`` (a bound instance).

    Raises:
        TypeError: two tools share a name, or a tool's signature cannot be called by keyword.
    """
    tools: dict[str, ToolInfo] = {}
    for attr_name in dir(type(adapter)):
        raw = inspect.getattr_static(type(adapter), attr_name)
        func = raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw
        opts = getattr(func, _MARK, None)
        if not isinstance(opts, ToolOptions):
            continue
        info = tool_info(attr_name, getattr(adapter, attr_name), opts)
        if info.name in tools:
            raise TypeError(f"two tools are named {info.name!r}")
        tools[info.name] = info
    return tools


class AdapterLoadError(Exception):
    """The adapter named by ``"module:Class"``, or a tools entry, cannot be loaded.

    Its message's first line is the root cause (``No module named 'x'``, or the exception
    the module raised); the lines after it say what to change. The worker prints it last on
    stderr, and the host puts it first in ``WorkerStartError``.
    """


def load_adapter(spec: str) -> type[Adapter]:
    """Resolve ``"pkg.module:Class"`` to the adapter class.

    Raises:
        AdapterLoadError: the module cannot be imported, or has no such Adapter subclass.
    """
    module_name, sep, qualname = spec.partition(":")
    if not sep or not module_name or not qualname:
        raise AdapterLoadError(f"adapter {spec!r} must look like 'package.module:ClassName'")
    module = import_module(module_name, f"adapter module {module_name!r}")
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AdapterLoadError(_no_class(module, module_name, qualname)) from None
    if not (isinstance(obj, type) and issubclass(obj, Adapter)):
        raise AdapterLoadError(
            f"{spec!r} is not a subclass of snakepit_trio.worker.Adapter "
            f"(it is {type(obj).__name__ if not isinstance(obj, type) else 'a class'} "
            f"{getattr(obj, '__qualname__', obj)!r})"
        )
    return obj


def import_module(module_name: str, subject: str) -> types.ModuleType:
    """Import the module of an adapter or of a tools entry (``subject`` names it in errors).

    Raises:
        AdapterLoadError: it, or a module it imports, cannot be found, or it raised.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise AdapterLoadError(_not_found(module_name, exc, subject)) from exc
    except Exception as exc:
        raise AdapterLoadError(
            f"{type(exc).__name__}: {exc} (raised while importing {subject}; its traceback "
            "is in the worker's stderr)"
        ) from exc


def _not_found(module_name: str, exc: ModuleNotFoundError, subject: str) -> str:
    missing = exc.name or module_name
    if not (module_name == missing or module_name.startswith(missing + ".")):
        # The module exists, but something it imports is not installed.
        return (
            f"No module named {missing!r} ({subject} imports it)\n"
            f"Install it for the workers' interpreter ({sys.executable}), or pass "
            "open_pool(..., python=...) naming an interpreter that has it."
        )
    parent, _, leaf = missing.rpartition(".")
    try:
        search = sys.modules[parent].__path__ if parent else sys.path
        names = [m.name for m in pkgutil.iter_modules(search)]
    except (KeyError, AttributeError):
        names = []
    close = difflib.get_close_matches(leaf, names, n=1, cutoff=0.75)
    guess = ""
    if close:
        guess = f" (did you mean {f'{parent}.{close[0]}' if parent else close[0]!r}?)"
    searched = [p or os.getcwd() for p in sys.path if _is_project_path(p)]
    return (
        f"No module named {missing!r} (cannot import {subject}){guess}\n"
        "Workers import it with the host's sys.path, plus open_pool(..., "
        f"pythonpath=[...]) first; they searched {', '.join(searched) or 'no project path'} "
        "(and the installed packages). Check the spelling, run the host from the directory "
        "that holds the module (or its package), or pass pythonpath=['/that/directory'] "
        "or cwd='/that/directory'."
    )


def _is_project_path(path: str) -> bool:
    # Leaves out the interpreter's own directories, so the list shows where users' code is.
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return not any(path.startswith(p) for p in prefixes if p) and "site-packages" not in path


def _no_class(module: types.ModuleType, module_name: str, qualname: str) -> str:
    if module_name == "__main__":
        return (
            f"module '__main__' has no attribute {qualname!r}: in a worker, __main__ is the "
            "worker program (python -m snakepit_trio.worker), not your script\n"
            "A class defined in the script you ran cannot be found by the workers, because "
            "they do not run your script. Move the adapter class into a module of its own "
            f"(e.g. adapters.py next to your script) and pass 'adapters:{qualname}'. Your "
            f"script itself also works as 'scriptname:{qualname}' if it starts trio.run(...) "
            'only under if __name__ == "__main__":.'
        )
    adapters = sorted(
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, Adapter) and value is not Adapter
    )
    return missing_name(module, module_name, qualname, adapters, "Adapter classes")


def missing_name(
    module: types.ModuleType,
    module_name: str,
    name: str,
    present: list[str],
    kind: str,
    entry: str = "",
) -> str:
    """Why ``name`` was not found in ``module``: the closest of what is ``present`` there
    (``kind``: what those are), and the ``entry`` that named it, if not the adapter."""
    close = difflib.get_close_matches(name, present, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    named = f" (tools entry {entry!r})" if entry else ""
    where = getattr(module, "__file__", None) or module_name
    return (
        f"module {module_name!r} has no attribute {name!r}{guess}{named}\n"
        f"{kind} in {where}: {', '.join(present) or 'none'}."
    )
