"""Every event a pool emits: its name, measurements and metadata (the README's table).

Measurements are numbers (seconds, bytes, counts); a measurement that is not known for one
event (``run_time`` of a call that never ran) is left out. Metadata always has ``pool``.
Namespaces whose events are all listed here are *closed*: a pattern there without ``*``
must name one of them. ``adapter.*`` is what workers emit (``ctx.emit``, ``ctx.span``) under
their own names; ``host_tool.*``, ``breaker.*`` and ``retry.*`` belong to the parts of the
engine that emit them (host tools, circuit breakers, retries), listed here as they are
named, so patterns on them are accepted.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class Spec(NamedTuple):
    measurements: tuple[str, ...]
    metadata: tuple[str, ...]
    when: str


_CALL = ("call_id", "tool", "session_id")

EVENTS: Final[dict[str, Spec]] = {
    "worker.spawned": Spec(
        ("spawn",),
        ("worker_id", "pid", "slot", "start_method"),
        "a worker process exists (spawn: seconds it took to start it)",
    ),
    "worker.ready": Spec(
        ("startup",),
        ("worker_id", "pid", "slot", "start_method"),
        "a worker serves (startup: seconds from spawned to ready: imports, initialize())",
    ),
    "worker.start_failed": Spec(
        (),
        ("slot", "reason"),
        "a replacement worker could not start (it is retried with backoff)",
    ),
    "worker.crashed": Spec(
        ("uptime", "last_rss"),
        ("worker_id", "pid", "cause", "exit_code", "signal", "running"),
        "a worker died without being asked to (cause as in WorkerCrashed.cause)",
    ),
    "worker.stopped": Spec(
        ("uptime", "requests"),
        ("worker_id", "pid", "reason"),
        "a worker the pool stopped has exited (reason: recycled or closing)",
    ),
    "worker.recycled": Spec(
        ("uptime", "requests"),
        ("worker_id", "pid", "reason"),
        "a worker is being replaced (reason: max_requests, max_age or max_memory_mb)",
    ),
    "worker.restarted": Spec(
        ("backoff",),
        ("slot",),
        "a crashed worker's slot starts a new worker (backoff: seconds waited first)",
    ),
    "call.start": Spec(("queue_depth",), _CALL, "a call is submitted"),
    "call.stop": Spec(
        ("queue_wait", "run_time", "duration", "bytes_in", "bytes_out"),
        (*_CALL, "worker_id", "outcome"),
        "a call ended, however it ended (outcome: ok or what it raised)",
    ),
    "call.exception": Spec(
        ("duration",),
        (*_CALL, "worker_id", "outcome", "error_type", "started"),
        "a call raised (just before its call.stop)",
    ),
    "stream.start": Spec(("queue_depth",), _CALL, "a stream is submitted"),
    "stream.stop": Spec(
        ("queue_wait", "duration", "chunks", "bytes_in", "bytes_out"),
        (*_CALL, "worker_id", "outcome"),
        "a stream ended (outcome: ok, abandoned when left early, or what it raised)",
    ),
    "stream.exception": Spec(
        ("duration",),
        (*_CALL, "worker_id", "outcome", "error_type", "started"),
        "a stream raised (just before its stream.stop)",
    ),
    "session.opened": Spec((), ("session_id", "worker_id", "affinity"), "a session opened"),
    "session.closed": Spec(
        ("lifetime", "calls"),
        ("session_id", "worker_id", "reason"),
        "a session ended (reason: closed, expired or pool_closed)",
    ),
    "session.lost": Spec(
        ("lifetime", "calls"),
        ("session_id", "worker_id", "reason"),
        "a strict session's worker died",
    ),
}

# Namespaces that other parts of the engine emit in (their events are named by them; the
# names below are the ones they use, for the README's table).
OPEN_NAMESPACES: Final = ("adapter", "host_tool", "breaker", "retry")
RESERVED: Final[dict[str, Spec]] = {
    "adapter.<name>": Spec(
        ("(yours)",),
        ("(yours)", "worker_id", "call_id", "tool", "session_id"),
        "ctx.emit(name, ...) in a worker, or snakepit_trio.worker.emit outside calls",
    ),
    "adapter.<name>.stop": Spec(
        ("duration",),
        ("(span attributes)", "worker_id", "call_id", "tool", "session_id"),
        "the end of a `with ctx.span(name, **attributes):` block",
    ),
    "adapter.<name>.exception": Spec(
        ("duration",),
        ("(span attributes)", "error_type", "worker_id", "call_id", "tool", "session_id"),
        "a ctx.span block raised (just before its .stop)",
    ),
    "host_tool.start / .stop / .exception": Spec(
        ("duration",), ("tool", "call_id", "session_id", "outcome"), "a host tool ran"
    ),
    "breaker.opened / .closed / .half_open / .rejected": Spec(
        ("failures",), ("breaker", "tool"), "a circuit breaker changed state or refused"
    ),
    "retry.attempt / .exhausted": Spec(
        ("attempt", "backoff"),
        ("tool", "error_type", "reason"),
        "a call is retried, or gives up (why: reason)",
    ),
}


def closed() -> dict[str, frozenset[str]]:
    """The namespaces whose events are all in EVENTS, with their names."""
    out: dict[str, set[str]] = {}
    for name in EVENTS:
        out.setdefault(name.split(".")[0], set()).add(name)
    return {k: frozenset(v) for k, v in out.items()}


CLOSED: Final = closed()
NAMESPACES: Final = frozenset(CLOSED) | frozenset(OPEN_NAMESPACES)
