"""snakepit_trio.telemetry: events from every pool, for handlers and subscriptions.

Each pool emits events (``worker.ready``, ``call.stop``, ``session.lost``, ... and what its
workers emit as ``adapter.*``; the README's "Observability" section lists them). Attach a
handler to one pool with ``pool.telemetry.attach(name, patterns, handler)``, or to every
pool of the process with ``snakepit_trio.telemetry.attach``; read them in a Trio task with
``async with pool.telemetry.subscribe(patterns) as events: async for event in events``.
While nothing is attached, emitting costs one boolean test.

Map: ``_hub.py`` (a pool's hub, the process-wide handlers, ``Event``), ``_api.py`` (the
public side), ``_catalogue.py`` (every event's name and fields), ``_calls.py`` (call and
stream events), ``_lifecycle.py`` (worker and session events), ``_from_workers.py``
(workers' own events), ``_otel.py`` (OpenTelemetry, only when it is asked for).
"""

from __future__ import annotations

from .._shared._metadata import fixup_module_metadata
from ._api import PoolTelemetry as PoolTelemetry
from ._api import Subscription as Subscription
from ._api import attach as attach
from ._api import detach as detach
from ._api import subscribe as subscribe
from ._hub import Event as Event

__all__ = ["Event", "PoolTelemetry", "Subscription", "attach", "detach", "subscribe"]

for _name in __all__:  # reprs and tracebacks read snakepit_trio.telemetry.Event
    fixup_module_metadata(globals()[_name], __name__)
del _name
