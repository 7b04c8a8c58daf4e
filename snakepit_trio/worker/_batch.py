"""BATCH: one call that runs a unary tool once per item, one item after another.

Why: a call costs a frame each way and a wake-up of the host, of this loop and of a tool
thread; for a tool that runs for microseconds that is nearly all of its cost. A batch pays
it once for many items (``pool.map(..., chunksize=n)``), and its arguments and results are
decoded and encoded once, as one array each.

Rules (the proto documents them): the batch is one call to the runtime (one slot, one
context, one deadline, one final frame). Items run in order; each item's outcome is an
entry of the RESULT's array: ``[0, value]`` or ``[1, type, message, traceback, kind,
detail?]`` (an ERROR frame's fields). With ``stop`` the first item that raises ends the
batch. A cancel stops it between items (sync tools) or at the item's next await (async
tools), and the batch ends with ERROR "cancelled". A value that cannot be encoded fails its
own item only; the item whose result would take the array past the payload limit gets a
"payload_too_large" entry, and the batch stops there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import attrs

from .._errors import PayloadTooLarge, SerializationError
from .._shared import _frames as w
from ._adapter import ToolInfo, check_arguments
from ._context import ToolContext
from ._outcomes import error_frame

Frame = list[Any]
Encode = Callable[..., bytes]  # Runtime.encode(value, what=...): sent to the host
Measure = Callable[..., int]  # Runtime.encoded_size(value, what=...): nothing kept


@attrs.frozen
class Packed:
    """A batch's RESULT payload, already encoded (the runtime sends it as it is)."""

    payload: bytes


def refused(call_id: int, info: ToolInfo | None, tool: str) -> Frame | None:
    """The ERROR that ends a batch of ``tool`` before it starts, or None if it may run."""
    if info is None:
        return w.error(call_id, "UnknownTool", f"unknown tool {tool!r}", w.KIND_UNKNOWN_TOOL)
    if info.streaming:
        message = f"{tool!r} streams; a batch runs only tools that return"
        return w.error(call_id, "InvalidArguments", message, w.KIND_INVALID_ARGUMENTS)
    return None


def problem(info: ToolInfo, items: Any) -> str | None:
    """What is wrong with a batch's decoded arguments, or None; each None becomes {}.

    The host checked them already: this is the cheap guard (names computed once per
    batch), and the full check only names what it found.
    """
    if type(items) is not list:
        return f"a batch's arguments must be an array, got {type(items).__name__}"
    names = {p.name for p in info.params}
    required = [p.name for p in info.params if p.required]
    for i, given in enumerate(items):
        args = items[i] = {} if given is None else given
        fits = (
            type(args) is dict
            and (info.accepts_extra or names.issuperset(args))
            and all(name in args for name in required)
        )
        if not fits:
            found = check_arguments(info, args)
            param, reason = found or (None, "keyword argument names must be strings")
            where = reason if param is None else f"argument {param!r}: {reason}"
            return f"item {i}: {where}"
    return None


def runner(
    info: ToolInfo,
    calls: list[dict[str, Any]],
    ctx: ToolContext,
    *,
    stop: bool,
    encode: Encode,
    measure: Measure,
    limit: int,
) -> Callable[[], Any]:
    """The function the runtime runs for the batch (sync or async, as the tool is)."""
    fn = info.fn

    def pack(entries: list[list[Any]]) -> Packed:
        what = f"results of a batch of {info.name!r}"
        try:
            return Packed(encode(entries, what=what))
        except (SerializationError, PayloadTooLarge):
            return Packed(encode(_each_alone(entries, info.name, measure, limit), what=what))

    if info.is_async:

        async def run_async() -> Packed:
            entries: list[list[Any]] = []
            try:
                for args in calls:
                    try:
                        entries.append([0, await fn(**args)])
                    except asyncio.CancelledError:
                        raise  # the batch was cancelled: it ends with ERROR "cancelled"
                    except BaseException as exc:  # this item's outcome (see _runtime's rules)
                        entries.append(_raised(exc))
                        if stop:
                            break
                    finally:
                        args.clear()  # its views of shared memory go before the result
            finally:
                _drop(calls)
            return pack(entries)

        return run_async

    def run_sync() -> Packed:
        entries: list[list[Any]] = []
        try:
            for args in calls:
                if ctx.cancelled:
                    raise asyncio.CancelledError  # reported as the batch's cancellation
                try:
                    entries.append([0, fn(**args)])
                except BaseException as exc:  # this item's outcome (see _runtime's rules)
                    entries.append(_raised(exc))
                    if stop:
                        break
                finally:
                    args.clear()
        finally:
            _drop(calls)
        return pack(entries)

    return run_sync


def batch_info(info: ToolInfo, run: Callable[[], Any]) -> ToolInfo:
    """The batch as the runtime runs it: a tool of no arguments whose result is packed."""
    return attrs.evolve(info, fn=run, params=(), context_param=None, accepts_extra=False)


def _drop(calls: list[dict[str, Any]]) -> None:
    """The arguments of items that never ran (stopped, cancelled) go too."""
    for args in calls:
        args.clear()


def _raised(error: BaseException) -> list[Any]:
    return [1, *error_frame(0, error)[2:]]  # type, message, traceback, kind[, detail]


def _each_alone(entries: list[list[Any]], name: str, measure: Measure, limit: int) -> list[Any]:
    """The entries again, once the array as a whole could not be encoded: each value that
    cannot be becomes its item's error, and the entry that would take the array past
    ``limit`` (room kept for the error that says so) ends it with a "payload_too_large"."""
    what = f"results of a batch of {name!r}"

    def too_large(size: int) -> list[Any]:
        return _raised(PayloadTooLarge(f"the results of a batch of {name!r}", size, limit))

    room = limit - measure(too_large(limit), what=what) - 16  # 16: the array's header
    fixed: list[list[Any]] = []
    total = 0
    for entry in entries:
        try:
            size = measure(entry, what=what)
        except (SerializationError, PayloadTooLarge) as exc:  # only a value can fail
            entry = _raised(exc)  # noqa: PLW2901 - its outcome is now the error
            size = measure(entry, what=what)
        if total + size > room:
            fixed.append(too_large(total + size))
            break
        total += size
        fixed.append(entry)
    return fixed
