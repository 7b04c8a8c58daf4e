"""What a worker says about itself when its channel opens: the description map.

The worker sends one msgpack map (the lane's WELCOME frame; gRPC's Describe reply carries the
same fields). Its shape, which proto/snakepit/v1/worker.proto documents beside the frames:

    {"protocol": str, "adapter": str, "pid": uint, "capacity": uint, "capabilities": [str],
     "runtime": str, "gil_enabled": bool, "thread_safe": bool,
     "tools": [{"name": str, "description": str, "streaming": bool, "accepts_extra": bool,
                "threaded": bool,
                "params": [{"name": str, "type": str, "required": bool, "default": bin}]}]}

``default`` is the msgpack encoding of the parameter's default, empty when it has none (or
when it cannot be encoded). ``runtime``, ``gil_enabled``, ``thread_safe`` and ``threaded``
may be left out (a worker that does not say: unknown, not declared, not in threads). Checked
here, so nothing past the transport reads a raw map.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._errors import SerializationError
from .._shared._codec import decode
from .._shared._frames import PROTOCOL, ProtocolViolation
from .._tools import ParamSpec, ToolSpec


@attrs.frozen
class WorkerDescription:
    """A worker's identity and tools, as it described them."""

    adapter: str
    pid: int
    capacity: int
    tools: tuple[ToolSpec, ...]
    protocol: str = PROTOCOL
    # What it can do beyond the base frames (``_frames.WORKER_CAPABILITIES``); a worker
    # that names none (an older or a minimal one) is sent nothing beyond them.
    capabilities: frozenset[str] = frozenset()
    runtime: str | None = None  # its language ("python", "node"); None: it did not say
    gil_enabled: bool | None = None  # None: it did not say
    thread_safe: bool = False  # its adapter declares that its tools may run in threads at once
    threaded: tuple[str, ...] = ()  # the tools whose calls run in threads (sync ones)


def _get(m: dict[str, Any], key: str, type_: type, where: str) -> Any:
    value = m.get(key)
    if type(value) is not type_:
        raise ProtocolViolation(
            f"{where}.{key} must be {type_.__name__}, got {type(value).__name__}"
        )
    return value


def _param(m: object, where: str) -> ParamSpec:
    if type(m) is not dict:
        raise ProtocolViolation(f"{where} must be a map")
    required = _get(m, "required", bool, where)
    raw = _get(m, "default", bytes, where)
    default = None
    if not required and raw:
        try:
            default = decode(raw, what="default")
        except SerializationError:
            default = None  # shown as unknown; the worker still applies its own default
    return ParamSpec(
        name=_get(m, "name", str, where),
        type=_get(m, "type", str, where),
        required=required,
        default=default,
    )


def _tool(m: object, where: str) -> ToolSpec:
    if type(m) is not dict:
        raise ProtocolViolation(f"{where} must be a map")
    name = _get(m, "name", str, where)
    params = _get(m, "params", list, where)
    return ToolSpec(
        name=name,
        description=_get(m, "description", str, where),
        streaming=_get(m, "streaming", bool, where),
        params=tuple(_param(p, f"{where}.params[{i}]") for i, p in enumerate(params)),
        accepts_extra=_get(m, "accepts_extra", bool, where),
    )


def description_from_map(m: object) -> WorkerDescription:
    """Check a description map and return it typed.

    Raises:
        ProtocolViolation: a field is missing or has the wrong type, or the worker speaks
            another protocol version.
    """
    if type(m) is not dict:
        raise ProtocolViolation(f"a worker description must be a map, got {type(m).__name__}")
    protocol = _get(m, "protocol", str, "describe")
    if protocol != PROTOCOL:
        raise ProtocolViolation(f"the worker speaks {protocol!r}; this host speaks {PROTOCOL!r}")
    tools = _get(m, "tools", list, "describe")
    capabilities = m.get("capabilities", [])
    if type(capabilities) is not list or not all(type(c) is str for c in capabilities):
        raise ProtocolViolation(
            f"describe.capabilities must be a list of str, got {type(capabilities).__name__}"
        )
    runtime = m.get("runtime") or None  # gRPC's Describe leaves "" when unset
    if runtime is not None and type(runtime) is not str:
        raise ProtocolViolation(f"describe.runtime must be str, got {type(runtime).__name__}")
    gil = m.get("gil_enabled")
    if gil is not None and type(gil) is not bool:
        raise ProtocolViolation(f"describe.gil_enabled must be bool, got {type(gil).__name__}")
    thread_safe = m.get("thread_safe", False)
    if type(thread_safe) is not bool:
        raise ProtocolViolation(
            f"describe.thread_safe must be bool, got {type(thread_safe).__name__}"
        )
    specs = tuple(_tool(t, f"describe.tools[{i}]") for i, t in enumerate(tools))
    threaded = []
    for i, t in enumerate(tools):
        flag = t.get("threaded", False) if type(t) is dict else False
        if type(flag) is not bool:
            raise ProtocolViolation(
                f"describe.tools[{i}].threaded must be bool, got {type(flag).__name__}"
            )
        if flag:
            threaded.append(specs[i].name)
    return WorkerDescription(
        adapter=_get(m, "adapter", str, "describe"),
        pid=_get(m, "pid", int, "describe"),
        capacity=_get(m, "capacity", int, "describe"),
        tools=specs,
        protocol=protocol,
        capabilities=frozenset(capabilities),
        runtime=runtime,
        gil_enabled=gil,
        thread_safe=thread_safe,
        threaded=tuple(threaded),
    )
