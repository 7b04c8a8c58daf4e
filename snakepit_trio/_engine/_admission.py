"""What a call must pass before it is queued: a known tool of the right kind, arguments that
fit its parameters and encode within the payload limit, and a sane timeout.

Pure functions: every error here is raised at the call site, before dispatch.
"""

from __future__ import annotations

import math
from typing import Any

from .._errors import InvalidArguments, UnknownTool
from .._shared._codec import Outbound, encode
from .._tools import ToolSpec, check_arguments


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
    spec: ToolSpec, args: dict[str, Any] | None, segments: Outbound | None, limit: int
) -> bytes:
    """The arguments, checked against the tool's parameters and msgpack-encoded."""
    if args is None:
        args = {}
    check_arguments(spec, args)
    if not args:
        return b""
    return encode(args, what=f"arguments of {spec.name!r}", limit=limit, shm=segments)


def budget(timeout: float | None, default: float | None, now: float) -> tuple[float | None, float]:
    """The call's timeout (``default`` when None) and absolute deadline (inf without one)."""
    if timeout is None:
        timeout = default
    elif timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
    return timeout, now + timeout if timeout is not None else math.inf
