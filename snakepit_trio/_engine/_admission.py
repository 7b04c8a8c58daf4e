"""What a call must pass before it is queued: options of the right type and range, a known
tool of the right kind, arguments that fit its parameters and encode within the payload limit.

Pure functions: every error here is raised at the call site, before dispatch (so before
anything is encoded into shared memory or sent to a worker).
"""

from __future__ import annotations

import math
from typing import Any

from .._core import _checks as checks
from .._errors import InvalidArguments, UnknownTool
from .._shared._codec import Outbound, encode
from .._tools import ToolSpec, check_arguments

# The most chunks a stream may run ahead of its consumer: the CALL frame's window is an
# unsigned field, and a window this wide already means "no backpressure".
MAX_WINDOW = 2**31 - 1


def check_call(
    tool: Any,
    *,
    timeout: Any,
    idempotent: Any = False,
    on_progress: Any = None,
    kill_on_cancel: Any = None,
) -> None:
    """Check the options of ``execute`` (and the ones ``stream`` shares with it).

    Raises:
        TypeError, ValueError: an option of the wrong type or out of range (named).
    """
    checks.text("tool", tool)
    _timeout(timeout)
    checks.flag("idempotent", idempotent)
    checks.function("on_progress", on_progress, none="no progress callback")
    checks.flag("kill_on_cancel", kill_on_cancel, none="the pool's kill_on_cancel")


def check_stream(
    tool: Any,
    *,
    timeout: Any,
    idle_timeout: Any,
    window: Any,
    on_progress: Any = None,
    kill_on_cancel: Any = None,
) -> tuple[float | None, int]:
    """Check the options of ``stream``.

    Returns:
        ``idle_timeout`` (a float, or None for no limit) and ``window`` as an int.

    Raises:
        TypeError, ValueError: an option of the wrong type or out of range (named).
    """
    check_call(tool, timeout=timeout, on_progress=on_progress, kill_on_cancel=kill_on_cancel)
    idle = checks.number("idle_timeout", idle_timeout, inf="no limit", none="no limit")
    chunks = checks.whole("window", window, maximum=MAX_WINDOW, unit="chunks")
    assert chunks is not None
    return (None if idle == math.inf else idle), chunks


def check_callback(callback: Any) -> None:
    """Check ``execute_stream``'s callback (called with each chunk).

    Raises:
        TypeError: it is not callable.
    """
    checks.function("callback", callback)


def _timeout(timeout: Any) -> float | None:
    return checks.number(
        "timeout", timeout, inf="no limit for this call", none="the pool's timeout"
    )


def spec(tools: dict[str, ToolSpec], tool: str, *, streaming: bool) -> ToolSpec:
    """The tool's spec, checked against how it is called (``execute`` or ``stream``)."""
    found = tools.get(tool)
    if found is None:
        raise UnknownTool(tool, list(tools))
    if found.streaming and not streaming:
        raise InvalidArguments(tool, None, "this tool streams; use pool.stream() instead")
    if streaming and not found.streaming:
        raise InvalidArguments(tool, None, "this tool does not stream; use pool.execute()")
    return found


def encode_args(
    spec: ToolSpec,
    args: dict[str, Any] | None,
    segments: Outbound | None,
    limit: int,
    *,
    arrow: bool = True,
) -> bytes:
    """The arguments, checked against the tool's parameters and msgpack-encoded (``arrow``
    False: the workers cannot read Arrow tables, so one is refused here)."""
    if args is None:
        args = {}
    check_arguments(spec, args)
    if not args:
        return b""
    what = f"arguments of {spec.name!r}"
    return encode(args, what=what, limit=limit, shm=segments, arrow=arrow)


def budget(timeout: float | None, default: float | None, now: float) -> tuple[float | None, float]:
    """The call's timeout (``default`` when None) and absolute deadline (inf without one).

    Raises:
        TypeError, ValueError: a timeout that is not a number of seconds > 0, math.inf or None.
    """
    timeout = default if timeout is None else _timeout(timeout)
    if timeout is None or timeout == math.inf:
        return None, math.inf
    return timeout, now + timeout
