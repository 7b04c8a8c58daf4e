"""The telemetry hub: one per pool, plus the process-wide handlers every hub also calls.

How this works: handlers are synchronous callables attached under a name with patterns
(``_core/_event_names.py``). Code that emits tests one boolean first, ``hub.on``, which is
True only while some handler (the pool's or a process-wide one) or a tracer is attached;
when it is False nothing else runs: no dict, no event, no clock read. When it is True, the
emitter asks ``routes(name)`` for the handlers that want that event (cached per name until
the handlers change) and builds the event only if there are any.

Rules:
- A handler runs inline, in the Trio thread, where the event happened: keep it cheap (use
  ``subscribe`` for work that waits). It must not mutate the event's dicts.
- A handler that raises is detached and logged once, with its traceback; the pool goes on.
- Handlers are called in the order they were attached, the pool's before the process-wide
  ones; a handler attached or detached while an event is being delivered takes effect
  from the next event.
- ``emit`` is what other parts of the engine call (host tools, breakers, retries):
  ``if hub.on: hub.emit("breaker.opened", {"failures": n}, {"breaker": name})``; ``pool`` is
  added to the metadata.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple, Protocol

import attrs
import trio

from .._core import _checks as checks
from .._core._event_names import check_patterns, matcher
from ._catalogue import CLOSED, NAMESPACES

log = logging.getLogger("snakepit_trio")

__all__ = ["Event", "Hub"]


class Event(NamedTuple):
    """One telemetry event, as handlers and subscriptions receive it (immutable).

    A named tuple rather than a frozen attrs class: one is made per event a handler wants,
    on the pool's hot path, and a tuple is made four times faster.

    Attributes:
        name: dotted, such as ``"call.stop"`` (the README's table lists them).
        measurements: numbers by name: seconds, bytes or counts.
        metadata: what it is about; always has ``pool`` (the pool's name).
        time: when it happened, in seconds since the epoch (``time.time()``); for events
            from a worker, its clock mapped onto the host's.
    """

    name: str
    measurements: dict[str, float]
    metadata: dict[str, Any]
    time: float


Handler = Callable[[Event], object]


class Tracer(Protocol):
    """What a pool's tracing does (``_otel.py``); the hub never imports OpenTelemetry."""

    def start(self, tool: str, call_id: int, session_id: str | None, stream: bool) -> Any: ...
    def end(self, span: Any, observed: Any, outcome: str, error: BaseException | None) -> None: ...
    def meta(self, span: Any) -> dict[str, Any] | None: ...
    def span_from_meta(
        self, name: str, meta: dict[str, Any] | None, attributes: dict[str, Any]
    ) -> Any: ...


@attrs.define(eq=False)
class Attached:
    name: str
    patterns: tuple[str, ...]
    matches: Callable[[str], bool]
    handler: Handler
    scope: str  # "pool 'x'" or "process-wide", for the log line


def make_attached(name: Any, patterns: Any, handler: Any, scope: str) -> Attached:
    """Check ``attach``'s arguments and make the entry.

    Raises:
        TypeError, ValueError: an argument of the wrong type or value (named).
    """
    checks.text("name", name, empty=False)
    patterns = check_patterns(patterns, closed=CLOSED, namespaces=NAMESPACES)
    checks.function("handler", handler)
    return Attached(name, patterns, matcher(patterns), handler, scope)


class _Handlers:
    """Named handlers, in attachment order."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.entries: dict[str, Attached] = {}

    def add(self, entry: Attached) -> None:
        if entry.name in self.entries:
            raise ValueError(
                f"a handler named {entry.name!r} is attached {self.scope} already; detach it "
                "first or attach under another name"
            )
        self.entries[entry.name] = entry

    def remove(self, name: str, entry: Attached | None = None) -> bool:
        """Detach ``name`` (only if it is still ``entry``, when given)."""
        current = self.entries.get(name)
        if current is None or (entry is not None and current is not entry):
            return False
        del self.entries[name]
        return True


class _Global:
    """The process-wide handlers, and every live hub (so each learns when they change)."""

    def __init__(self) -> None:
        self.handlers = _Handlers("process-wide")
        self.hubs: weakref.WeakSet[Hub] = weakref.WeakSet()
        self.lock = threading.Lock()  # pools in other threads' Trio runs read this too

    def changed(self) -> None:
        for hub in list(self.hubs):
            hub.refresh()


GLOBAL = _Global()


def attach_global(name: Any, patterns: Any, handler: Any) -> None:
    entry = make_attached(name, patterns, handler, "process-wide")
    with GLOBAL.lock:
        GLOBAL.handlers.add(entry)
        GLOBAL.changed()


def detach_global(name: Any, entry: Attached | None = None) -> bool:
    checks.text("name", name, empty=False)
    with GLOBAL.lock:
        done = GLOBAL.handlers.remove(name, entry)
        if done:
            GLOBAL.changed()
    return done


class Hub:
    """A pool's telemetry: its handlers, its tracer, and what was dropped."""

    def __init__(self, pool: str) -> None:
        self.pool = pool
        self.on = False  # the one test every emission point makes first
        self.handlers = _Handlers(f"to pool {pool!r}")
        self.tracer: Tracer | None = None
        self.dropped = 0  # events subscriptions of this pool had no room for
        self._routes: dict[str, tuple[Attached, ...]] = {}
        self._offsets: dict[str, float] = {}  # per worker: host time - worker time, least
        # Trio's clock, read without trio.current_time()'s checks (a call's durations are
        # read twice per observed call); virtual under a MockClock, as the pool's.
        self.clock: Callable[[], float] = trio.lowlevel.current_clock().current_time
        self._closers: dict[int, Callable[[], None]] = {}
        self._closer_ids = itertools.count()
        with GLOBAL.lock:
            GLOBAL.hubs.add(self)
            self.refresh()

    # --- handlers ---------------------------------------------------------------------------
    def attach(self, name: Any, patterns: Any, handler: Any) -> Attached:
        entry = make_attached(name, patterns, handler, f"pool {self.pool!r}")
        self.handlers.add(entry)
        self.refresh()
        return entry

    def detach(self, name: Any, entry: Attached | None = None) -> bool:
        checks.text("name", name, empty=False)
        done = self.handlers.remove(name, entry)
        if done:
            self.refresh()
        return done

    def set_tracer(self, tracer: Tracer | None) -> None:
        self.tracer = tracer
        self.refresh()

    def refresh(self) -> None:
        """The handlers changed: recompute ``on``, forget the routes."""
        self._routes = {}
        self.on = bool(self.handlers.entries or GLOBAL.handlers.entries or self.tracer)

    def on_close(self, closer: Callable[[], None]) -> int:
        """Call ``closer`` when the pool has closed (subscriptions end then); the key to
        ``forget`` it by."""
        key = next(self._closer_ids)
        self._closers[key] = closer
        return key

    def forget(self, key: int) -> None:
        self._closers.pop(key, None)

    def closed(self) -> None:
        """The pool is closed: end its subscriptions (their iteration stops)."""
        closers, self._closers = self._closers, {}
        for closer in closers.values():
            closer()

    # --- emitting ---------------------------------------------------------------------------
    def routes(self, name: str) -> tuple[Attached, ...]:
        """The handlers that want events named ``name`` (empty: build nothing)."""
        routes = self._routes  # refresh() may replace it from another thread meanwhile
        found = routes.get(name)
        if found is None:
            entries = (*self.handlers.entries.values(), *GLOBAL.handlers.entries.values())
            found = routes[name] = tuple(e for e in entries if e.matches(name))
        return found

    def emit(self, name: str, measurements: dict[str, float], metadata: dict[str, Any]) -> None:
        """Deliver an event to the handlers that want it (``pool`` is added to metadata).

        Call it only when ``self.on`` is True, so that nothing is built otherwise.
        """
        routes = self.routes(name)
        if routes:
            metadata["pool"] = self.pool
            self.deliver(routes, Event(name, measurements, metadata, time.time()))

    def deliver(self, routes: tuple[Attached, ...], event: Event) -> None:
        for entry in routes:
            try:
                entry.handler(event)
            except Exception:
                self._failed(entry, event)

    def _failed(self, entry: Attached, event: Event) -> None:
        if entry.scope == "process-wide":
            gone = detach_global(entry.name, entry)
        else:
            gone = self.detach(entry.name, entry)
        if gone:  # once: a second failure of the same entry finds it detached
            log.exception(
                "telemetry handler %r (%s) raised on event %r; it is detached",
                entry.name,
                entry.scope,
                event.name,
            )

    # --- traces -------------------------------------------------------------------------------
    def span_from_meta(
        self, name: str, meta: dict[str, Any] | None, attributes: dict[str, Any] | None = None
    ) -> AbstractContextManager[Any]:
        """For engine code that runs on behalf of a worker's call (a host tool): a span
        under the trace context the worker sent in ``meta``, current for the block, so the
        calls made in it are its children. Does nothing when the pool is not traced."""
        if self.tracer is None:
            return nullcontext()
        return self.tracer.span_from_meta(name, meta, attributes or {})  # type: ignore[no-any-return]

    # --- events from workers ------------------------------------------------------------------
    def worker_time(self, worker_id: str, worker_time: float) -> float:
        """The host's time (time.time()) of an event a worker stamped ``worker_time``.

        Estimated as the least difference seen between arrival and stamp (the arrival
        closest to its emission), so it is late by at most the transport's smallest delay.
        """
        now = time.time()
        offset = self._offsets.get(worker_id)
        if offset is None or now - worker_time < offset:
            offset = self._offsets[worker_id] = now - worker_time
        return worker_time + offset

    def worker_gone(self, worker_id: str) -> None:
        self._offsets.pop(worker_id, None)
