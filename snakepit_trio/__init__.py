"""snakepit_trio: a Trio pool of long-lived, isolated worker processes.

Public names (all re-exported here):
- open_pool ................. _lifecycle.py (start, drain, stop)
- open_pools, Pools ......... _pools.py (several named pools, routing by tool); load_pools
                              .. _pool_files.py (their configuration from TOML)
- Pool, Session, Stream ..... _pool.py, _session.py, _streaming.py: facades over the engine
- PoolConfig, PoolOptions, RestartPolicy .. _config.py;  TLSConfig .. _remote.py (endpoints)
- PoolStats, WorkerInfo, CallInfo, SessionInfo .. _stats.py;  ToolSpec, ParamSpec .. _tools.py
- Progress .................. _progress.py (events from ToolContext.progress)
- RetryPolicy, retry ........ _retry.py;  CircuitBreaker .. _circuit.py (around any awaitable)
- errors ..................... _errors.py (all derive from SnakepitError)
- register_type .............. _shared/_user_types.py (a user's own types as values, both
                               sides; also in snakepit_trio.worker)
- writable .................. _shared/_writable.py (a received value's arrays, made writable;
                              also in workers: it imports no trio)
- snakepit_trio.worker ....... the worker runtime (Adapter, tool, ToolContext); never imports trio
- snakepit_trio.testing ...... open_fake_pool, faults: the pool in memory, for tests
- snakepit_trio.telemetry .... attach, detach, subscribe: events of every pool (also
                               ``pool.telemetry``); its _otel.py: OpenTelemetry, when asked
- snakepit_trio.contrib ...... otel (instrument a pool), prometheus (a collector, a server)

Rooms below the handles (docs/architecture.md tells the whole story; import contracts in
pyproject.toml keep it true): _engine/ carries out the decisions of _core/ (pure); _supervision/
starts, watches and stops workers; _transport/ carries frames; _shared/ is what host and worker
both import.

Imports are lazy (PEP 562) so that ``python -m snakepit_trio.worker`` does not pull in trio.
``_EXPORTS`` is the one list of public names; the ``TYPE_CHECKING`` block repeats it for type
checkers, and ``tests/test_exports.py`` checks that the two agree and pins every signature.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from ._shared._metadata import fixup_module_metadata

if TYPE_CHECKING:  # the same names as _EXPORTS (tests/test_exports.py checks it)
    from ._circuit import CircuitBreaker as CircuitBreaker
    from ._config import PoolConfig as PoolConfig
    from ._config import PoolOptions as PoolOptions
    from ._config import RestartPolicy as RestartPolicy
    from ._config import TLSConfig as TLSConfig
    from ._errors import AmbiguousTool as AmbiguousTool
    from ._errors import CircuitOpen as CircuitOpen
    from ._errors import HostToolError as HostToolError
    from ._errors import HostToolsUnavailable as HostToolsUnavailable
    from ._errors import InvalidArguments as InvalidArguments
    from ._errors import InvalidVariable as InvalidVariable
    from ._errors import PayloadTooLarge as PayloadTooLarge
    from ._errors import PoolClosed as PoolClosed
    from ._errors import PoolSaturated as PoolSaturated
    from ._errors import PoolUnhealthy as PoolUnhealthy
    from ._errors import QueueTimeout as QueueTimeout
    from ._errors import ReentrancyError as ReentrancyError
    from ._errors import RemoteError as RemoteError
    from ._errors import RequestTimeout as RequestTimeout
    from ._errors import SerializationError as SerializationError
    from ._errors import SessionLost as SessionLost
    from ._errors import SessionQuotaExceeded as SessionQuotaExceeded
    from ._errors import SnakepitError as SnakepitError
    from ._errors import StreamIdleTimeout as StreamIdleTimeout
    from ._errors import UnknownHostTool as UnknownHostTool
    from ._errors import UnknownTool as UnknownTool
    from ._errors import WorkerCrashed as WorkerCrashed
    from ._errors import WorkerStartError as WorkerStartError
    from ._lifecycle import open_pool as open_pool
    from ._pool import HostToolContext as HostToolContext
    from ._pool import Pool as Pool
    from ._pool_files import load_pools as load_pools
    from ._pools import Pools as Pools
    from ._pools import open_pools as open_pools
    from ._progress import Progress as Progress
    from ._retry import RetryPolicy as RetryPolicy
    from ._retry import retry as retry
    from ._session import Session as Session
    from ._session import Variable as Variable
    from ._shared._user_types import register_type as register_type
    from ._shared._writable import writable as writable
    from ._stats import CallInfo as CallInfo
    from ._stats import PoolStats as PoolStats
    from ._stats import SessionInfo as SessionInfo
    from ._stats import WorkerInfo as WorkerInfo
    from ._streaming import Stream as Stream
    from ._tools import ParamSpec as ParamSpec
    from ._tools import ToolSpec as ToolSpec

__version__ = "0.1.0"

# The public names, each with the module that defines it: the one list.
_EXPORTS: dict[str, str] = {
    # starting a pool, and the pool
    "open_pool": "._lifecycle",
    "Pool": "._pool",
    "PoolConfig": "._config",
    "PoolOptions": "._config",
    "RestartPolicy": "._config",
    "TLSConfig": "._config",
    # several pools
    "open_pools": "._pools",
    "Pools": "._pools",
    "load_pools": "._pool_files",
    # sessions and streams
    "Session": "._session",
    "Variable": "._session",
    "Stream": "._streaming",
    "Progress": "._progress",
    # host tools (called by workers' tools)
    "HostToolContext": "._pool",
    # a user's own types as arguments and results (the worker registers them too)
    "register_type": "._shared._user_types",
    # retries and circuit breakers (pool calls take them; they also wrap any awaitable)
    "RetryPolicy": "._retry",
    "retry": "._retry",
    "CircuitBreaker": "._circuit",
    # snapshots
    "PoolStats": "._stats",
    "CallInfo": "._stats",
    "SessionInfo": "._stats",
    "WorkerInfo": "._stats",
    "ToolSpec": "._tools",
    "ParamSpec": "._tools",
    # received values (arrays arrive read-only)
    "writable": "._shared._writable",
    # errors
    "SnakepitError": "._errors",
    "AmbiguousTool": "._errors",
    "CircuitOpen": "._errors",
    "HostToolError": "._errors",
    "HostToolsUnavailable": "._errors",
    "InvalidArguments": "._errors",
    "InvalidVariable": "._errors",
    "PayloadTooLarge": "._errors",
    "PoolClosed": "._errors",
    "PoolSaturated": "._errors",
    "PoolUnhealthy": "._errors",
    "QueueTimeout": "._errors",
    "ReentrancyError": "._errors",
    "RemoteError": "._errors",
    "RequestTimeout": "._errors",
    "SerializationError": "._errors",
    "SessionLost": "._errors",
    "SessionQuotaExceeded": "._errors",
    "StreamIdleTimeout": "._errors",
    "UnknownHostTool": "._errors",
    "UnknownTool": "._errors",
    "WorkerCrashed": "._errors",
    "WorkerStartError": "._errors",
}

__all__ = list(_EXPORTS)


# Public subpackages reachable as attributes before they are imported (``sp.telemetry``).
_SUBPACKAGES = ("telemetry",)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    _bind_imported()  # binds (and presents as ours) this value, and any other now imported
    return value


def _bind_imported() -> None:
    """Bind every public name whose module is imported by now, presented as ours.

    Importing one public module imports most of the others (``_lifecycle`` imports them
    all), so this presents, say, ``PoolClosed`` as ``snakepit_trio.PoolClosed`` in
    tracebacks even if it was never looked up here. Nothing is imported that was not.
    """
    namespace = globals()
    for name, module in _EXPORTS.items():
        if name in namespace:
            continue
        value = getattr(sys.modules.get(__name__ + module), name, None)
        if value is not None:  # None: not imported (or still being imported)
            fixup_module_metadata(value, __name__)
            namespace[name] = value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
