"""EVENT frames from workers (``ctx.emit``, ``ctx.span``, ``snakepit_trio.worker.emit``).

A worker's event named ``N`` reaches handlers as ``adapter.N``: its own namespace, so a
worker can never pass for the pool (``call.stop``). Its metadata is the worker's, plus
``pool``, ``worker_id``, ``call_id`` (None outside calls), and ``tool`` and ``session_id``
of the call it came from (these keys are the host's: a worker's own values for them are
replaced). Its time is the worker's clock mapped onto the host's (``Hub.worker_time``).
"""

from __future__ import annotations

from typing import Any

from .._core._event_names import MAX_NAME, is_name
from .._shared import _frames as w
from ._hub import Event, Hub

PREFIX = "adapter."


def problem(frame: w.Event) -> str | None:
    """Why an EVENT frame breaks the protocol (see the proto), or None."""
    if len(frame.name) > MAX_NAME or not is_name(frame.name):
        return f"EVENT name {frame.name[:80]!r} is not dotted words"
    for key, value in frame.measurements.items():
        if type(key) is not str or not (type(value) is int or type(value) is float):
            return f"EVENT {frame.name!r} measurement {key!r} is not a number"
    for key in frame.metadata:
        if type(key) is not str:
            return f"EVENT {frame.name!r} metadata key {key!r} is not a str"
    return None


def deliver(hub: Hub, worker_id: str, frame: w.Event, call: Any) -> None:
    """Hand a worker's event to the handlers that want it (the hub is on)."""
    name = PREFIX + frame.name
    routes = hub.routes(name)
    if not routes:
        return
    metadata = dict(frame.metadata)
    metadata["pool"] = hub.pool
    metadata["worker_id"] = worker_id
    metadata["call_id"] = frame.call_id
    metadata["tool"] = None if call is None else call.tool
    metadata["session_id"] = None if call is None else call.handle.session_id
    event = Event(name, dict(frame.measurements), metadata, hub.worker_time(worker_id, frame.time))
    hub.deliver(routes, event)
