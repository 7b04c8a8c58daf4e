"""The public surface is pinned: names, signatures and docstring sections.

``snakepit_trio._EXPORTS`` is the one list of public names (with the ``__all__`` of
``snakepit_trio.worker``, ``snakepit_trio.testing`` and ``snakepit_trio.hardware``).
``EXPECTED`` below pins the signature of every public function, class, method and property.
A change to the public API must change this table in the same commit; when it is intended,
print the current table with ``python -m tests.test_exports`` and paste it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import traceback
import types
import typing
from pathlib import Path

import attrs
import pytest

import snakepit_trio
import snakepit_trio.contrib.otel
import snakepit_trio.contrib.prometheus
import snakepit_trio.contrib.ray
import snakepit_trio.telemetry
import snakepit_trio.testing
import snakepit_trio.worker
from snakepit_trio._errors import __all__ as ERROR_NAMES
from snakepit_trio._public import NoPublicConstructor

PACKAGES = (
    snakepit_trio,
    snakepit_trio.worker,
    snakepit_trio.testing,
    snakepit_trio.telemetry,
    snakepit_trio.contrib.otel,
    snakepit_trio.contrib.prometheus,
    snakepit_trio.contrib.ray,
)

# Every public name and member -> what it is and its signature (``surface()`` below).
# Printed by ``python -m tests.test_exports``.
EXPECTED: dict[str, str] = {
    "AmbiguousTool": (
        "class(UnknownTool) (tool: 'str', candidates: 'list[str]', "
        "pools: 'dict[str, list[str]]') -> 'None'"
    ),
    "CallInfo": (
        "class (id: 'int', tool: 'str', elapsed: 'float', cancelled: 'bool', "
        "session_id: 'str | None' = None) -> None"
    ),
    "CircuitBreaker": (
        "class (failure_threshold: 'int' = 5, reset_timeout: 'float' = 30.0, *, "
        "half_open_calls: 'int' = 1, window: 'float | None' = None, "
        "failure_on: 'ExceptionTypes' = <class 'Exception'>, name: 'str' = '', "
        "on_state_change: 'StateCallback | None' = None) -> 'None'"
    ),
    "CircuitBreaker.failure_on": "attribute",
    "CircuitBreaker.failures": "property -> int",
    "CircuitBreaker.guard": "(self) -> 'AbstractAsyncContextManager[None]'",
    "CircuitBreaker.name": "attribute",
    "CircuitBreaker.on_state_change": "attribute",
    "CircuitBreaker.retry_in": "property -> float",
    "CircuitBreaker.state": "property -> str",
    "CircuitOpen": "class(SnakepitError) (name: 'str', retry_in: 'float') -> 'None'",
    "HostToolContext": (
        "class (pool: 'Pool', session: 'Session | None', session_id: 'str | None', "
        "worker_id: 'str', call_id: 'int', tool: 'str', deadline: 'float | None') -> None"
    ),
    "HostToolContext.time_remaining": "(self) -> 'float | None'",
    "HostToolError": (
        "class(SnakepitError) (tool: 'str', kind: 'str', message: 'str', "
        "remote_type: 'str' = '') -> 'None'"
    ),
    "HostToolsUnavailable": "class(HostToolError) (tool: 'str') -> 'None'",
    "InvalidArguments": (
        "class(SnakepitError) (tool: 'str', param: 'str | None', reason: 'str') -> 'None'"
    ),
    "InvalidVariable": (
        "class(SnakepitError, ValueError) (name: 'str', constraint: 'str', "
        "message: 'str') -> 'None'"
    ),
    "ParamSpec": (
        "class (name: 'str', type: 'str', required: 'bool', default: 'Any' = None) -> None"
    ),
    "PayloadTooLarge": (
        "class(SnakepitError) (what: 'str', size: 'int', limit: 'int', "
        "option: 'str' = 'max_payload_bytes') -> 'None'"
    ),
    "Pool": "class(HostToolRegistrar): no public constructor",
    "Pool.as_completed": (
        "(self, calls: 'CallSource', *, max_concurrency: 'int | None' = None, "
        "return_exceptions: 'bool' = False, timeout: 'float | None' = None, "
        "idempotent: 'bool' = False, kill_on_cancel: 'bool | None' = None, "
        "retry: 'RetryPolicy | None' = None, breaker: 'CircuitBreaker | None' = None, "
        "session: 'Session | None' = None) -> 'PairStream'"
    ),
    "Pool.close_session": "(self, id: 'str') -> 'bool'",
    "Pool.config": "property -> PoolConfig",
    "Pool.execute": (
        "async (self, tool: 'str', args: 'dict[str, Any] | None' = None, *, "
        "timeout: 'float | None' = None, idempotent: 'bool' = False, "
        "on_progress: 'ProgressCallback | None' = None, kill_on_cancel: 'bool | None' = None, "
        "retry: 'RetryPolicy | None' = None, breaker: 'CircuitBreaker | None' = None) -> 'Any'"
    ),
    "Pool.execute_batch": (
        "async (self, calls: 'CallSource', *, max_concurrency: 'int | None' = None, "
        "return_exceptions: 'bool' = False, timeout: 'float | None' = None, "
        "idempotent: 'bool' = False, kill_on_cancel: 'bool | None' = None, "
        "retry: 'RetryPolicy | None' = None, breaker: 'CircuitBreaker | None' = None, "
        "session: 'Session | None' = None) -> 'list[Any]'"
    ),
    "Pool.execute_in_session": (
        "async (self, session_id: 'str', tool: 'str', args: 'dict[str, Any] | None' = None, *, "
        "timeout: 'float | None' = None, idempotent: 'bool' = False, "
        "on_progress: 'ProgressCallback | None' = None, kill_on_cancel: 'bool | None' = None, "
        "retry: 'RetryPolicy | None' = None, breaker: 'CircuitBreaker | None' = None) -> 'Any'"
    ),
    "Pool.execute_in_session_stream": (
        "async (self, session_id: 'str', tool: 'str', args: 'dict[str, Any] | None', "
        "callback: 'Callable[[Any], object]', *, timeout: 'float | None' = None, "
        "idle_timeout: 'float | None' = None, window: 'int' = 16, "
        "on_progress: 'ProgressCallback | None' = None, "
        "kill_on_cancel: 'bool | None' = None) -> 'None'"
    ),
    "Pool.execute_stream": (
        "async (self, tool: 'str', args: 'dict[str, Any] | None', "
        "callback: 'Callable[[Any], object]', *, timeout: 'float | None' = None, "
        "idle_timeout: 'float | None' = None, window: 'int' = 16, "
        "on_progress: 'ProgressCallback | None' = None, "
        "kill_on_cancel: 'bool | None' = None) -> 'None'"
    ),
    "Pool.get_session": "(self, id: 'str') -> 'Session | None'",
    "Pool.host_tool": (
        "(self, fn: 'F | None' = None, /, *, name: 'str | None' = None, "
        "description: 'str | None' = None) -> 'F | Callable[[F], F]'"
    ),
    "Pool.host_tools": "(self, session: 'Session | str | None' = None) -> 'list[ToolSpec]'",
    "Pool.list_sessions": "(self) -> 'list[SessionInfo]'",
    "Pool.map": (
        "(self, tool: 'str', args: 'ArgsSource', *, max_concurrency: 'int | None' = None, "
        "ordered: 'bool' = True, return_exceptions: 'bool' = False, "
        "chunksize: \"int | Literal['auto']\" = 'auto', timeout: 'float | None' = None, "
        "idempotent: 'bool' = False, kill_on_cancel: 'bool | None' = None, "
        "retry: 'RetryPolicy | None' = None, breaker: 'CircuitBreaker | None' = None, "
        "session: 'Session | None' = None) -> 'ResultStream'"
    ),
    "Pool.open_session": (
        "async (self, id: 'str | None' = None, *, affinity: 'str' = 'strict', "
        "ttl: 'float | None' = None, metadata: 'dict[str, Any] | None' = None) -> 'Session'"
    ),
    "Pool.register_host_tool": (
        "(self, fn: 'Callable[..., Any]', *, name: 'str | None' = None, "
        "description: 'str | None' = None) -> 'ToolSpec'"
    ),
    "Pool.session": (
        "asynccontextmanager (self, id: 'str | None' = None, *, affinity: 'str' = 'strict', "
        "ttl: 'float | None' = None, "
        "metadata: 'dict[str, Any] | None' = None) -> 'AsyncIterator[Session]'"
    ),
    "Pool.stats": "(self) -> 'PoolStats'",
    "Pool.stream": (
        "(self, tool: 'str', args: 'dict[str, Any] | None' = None, *, "
        "timeout: 'float | None' = None, idle_timeout: 'float | None' = None, window: 'int' = 16, "
        "on_progress: 'ProgressCallback | None' = None, "
        "kill_on_cancel: 'bool | None' = None) -> 'AbstractAsyncContextManager[Stream]'"
    ),
    "Pool.telemetry": "property -> PoolTelemetry",
    "Pool.tools": "(self) -> 'list[ToolSpec]'",
    "Pool.unregister_host_tool": "(self, name: 'str') -> 'bool'",
    "Pool.workers": "(self) -> 'list[WorkerInfo]'",
    "PoolClosed": "class(SnakepitError) (*args)",
    "PoolConfig": (
        "class (*, adapter: 'str | None' = None, tools: 'Sequence[str | Callable[..., Any]]' = (), "
        "size: 'int' = NOTHING, worker_capacity: 'int' = 1, profile: 'str' = 'process', "
        "max_queue: 'int | None' = None, queue_timeout: 'float | None' = None, "
        "timeout: 'float | None' = None, startup_timeout: 'float' = 30.0, "
        "startup_batch_size: 'int' = 8, drain_timeout: 'float' = 10.0, "
        "shutdown_grace: 'float' = 5.0, max_payload_bytes: 'int' = 67108864, "
        "shm_threshold: 'int | None' = 1048576, transport: 'str' = NOTHING, "
        "start_method: 'str' = NOTHING, prefetch: 'int' = 64, prefetch_budget: 'float' = 0.002, "
        "max_requests: 'int | None' = None, max_memory_mb: 'float | None' = None, "
        "max_age: 'float | None' = None, max_retries: 'int' = 1, kill_on_cancel: 'bool' = False, "
        "cancel_grace: 'float' = 1.0, max_sessions: 'int | None' = None, "
        "session_ttl: 'float | None' = None, restart: 'RestartPolicy' = NOTHING, "
        "crash_threshold: 'int | None' = 5, crash_window: 'float' = 10.0, "
        "probe_after: 'float' = 5.0, heartbeat_interval: 'float' = 0.5, "
        "heartbeat_timeout: 'float | None' = 2.0, handle_sigterm: 'bool' = True, "
        "registry: 'bool' = True, state_dir: 'str | None' = None, name: 'str' = 'pool', "
        "python: 'str' = NOTHING, runtime: 'str' = 'python', "
        "worker_command: 'Sequence[str] | None' = None, env: 'Mapping[str, str]' = NOTHING, "
        "cwd: 'str | None' = None, pythonpath: 'Sequence[str]' = (), inherit_path: 'bool' = True, "
        "worker_output: 'str' = 'log', max_host_tool_calls: 'int' = 64, "
        "max_reentry_depth: 'int' = 4, devices: 'str | Sequence[str | Device] | None' = None, "
        "threads_per_worker: \"int | Literal['auto'] | None\" = 1, tracing: 'bool' = False, "
        "endpoints: 'Sequence[str] | None' = (), token: 'str | bytes | None' = None, "
        "tls: 'TLSConfig | None' = None, launcher: 'WorkerLauncher | None' = None) -> None"
    ),
    "PoolConfig.build": (
        "classmethod (adapter: 'str | None', config: 'PoolConfig | None', "
        "options: 'Mapping[str, Any]') -> 'PoolConfig'"
    ),
    "PoolOptions": "TypedDict(total=False)",
    "PoolSaturated": "class(SnakepitError) (max_queue: 'int') -> 'None'",
    "PoolStats": (
        "class (workers: 'int', available: 'int', busy: 'int', queued: 'int', in_flight: 'int', "
        "requests: 'int', errors: 'int', queue_timeouts: 'int', saturated: 'int', restarts: 'int', "
        "crashes: 'int', sessions: 'int' = 0, recycles: 'int' = 0, health: 'str' = 'healthy', "
        "events_dropped: 'int' = 0) -> None"
    ),
    "PoolUnhealthy": (
        "class(SnakepitError) (crashes: 'int', window: 'float', last_cause: 'str', "
        "retry_in: 'float') -> 'None'"
    ),
    "Pools": "class(Mapping): no public constructor",
    "Pools.execute": (
        "async (self, tool: 'str', args: 'dict[str, Any] | None' = None, *, "
        "timeout: 'float | None' = None, idempotent: 'bool' = False, "
        "on_progress: 'ProgressCallback | None' = None, "
        "kill_on_cancel: 'bool | None' = None) -> 'Any'"
    ),
    "Pools.execute_stream": (
        "async (self, tool: 'str', args: 'dict[str, Any] | None', "
        "callback: 'Callable[[Any], object]', *, timeout: 'float | None' = None, "
        "idle_timeout: 'float | None' = None, window: 'int' = 16, "
        "on_progress: 'ProgressCallback | None' = None, "
        "kill_on_cancel: 'bool | None' = None) -> 'None'"
    ),
    "Pools.route": "(self, tool: 'str') -> 'Pool'",
    "Pools.stats": "(self) -> 'dict[str, PoolStats]'",
    "Pools.stream": (
        "(self, tool: 'str', args: 'dict[str, Any] | None' = None, *, "
        "timeout: 'float | None' = None, idle_timeout: 'float | None' = None, window: 'int' = 16, "
        "on_progress: 'ProgressCallback | None' = None, "
        "kill_on_cancel: 'bool | None' = None) -> 'AbstractAsyncContextManager[Stream]'"
    ),
    "Pools.tools": "(self) -> 'dict[str, list[ToolSpec]]'",
    "Pools.workers": "(self) -> 'dict[str, list[WorkerInfo]]'",
    "Progress": (
        "class (done: 'float', total: 'float | None' = None, message: 'str | None' = None) -> None"
    ),
    "Progress.fraction": "property -> float | None",
    "QueueTimeout": "class(SnakepitError, TimeoutError) (waited: 'float') -> 'None'",
    "ReentrancyError": (
        "class(SnakepitError) (tool: 'str', chain: 'tuple[str, ...]', reason: 'str') -> 'None'"
    ),
    "RemoteError": (
        "class(SnakepitError) (tool: 'str', remote_type: 'str', message: 'str', "
        "traceback: 'str') -> 'None'"
    ),
    "RequestTimeout": (
        "class(SnakepitError, TimeoutError) (tool: 'str', timeout: 'float', *, "
        "started: 'bool') -> 'None'"
    ),
    "RestartPolicy": (
        "class (initial: 'float' = 0.05, factor: 'float' = 2.0, max_delay: 'float' = 10.0, "
        "reset_after: 'float' = 10.0) -> None"
    ),
    "RetryPolicy": (
        "class (attempts: 'int' = 3, initial: 'float' = 0.1, factor: 'float' = 2.0, "
        "max_delay: 'float' = 5.0, jitter: 'str' = 'full', retry_on: 'RetryOn' = (), "
        "budget: 'float | None' = None, rng: 'Callable[[], float] | None' = None, "
        "on_retry: 'RetryCallback | None' = None) -> None"
    ),
    "SerializationError": "class(SnakepitError) (*args)",
    "Session": "class(HostToolRegistrar): no public constructor",
    "Session.affinity": "property -> str",
    "Session.as_completed": (
        "(self, calls: 'CallSource', *, max_concurrency: 'int | None' = None, "
        "return_exceptions: 'bool' = False, timeout: 'float | None' = None, "
        "idempotent: 'bool' = False, kill_on_cancel: 'bool | None' = None, "
        "retry: 'RetryPolicy | None' = None, "
        "breaker: 'CircuitBreaker | None' = None) -> 'PairStream'"
    ),
    "Session.close": "(self) -> 'None'",
    "Session.delete_variable": "(self, name: 'str') -> 'None'",
    "Session.execute": (
        "async (self, tool: 'str', args: 'dict[str, Any] | None' = None, *, "
        "timeout: 'float | None' = None, idempotent: 'bool' = False, "
        "on_progress: 'ProgressCallback | None' = None, kill_on_cancel: 'bool | None' = None, "
        "retry: 'RetryPolicy | None' = None, breaker: 'CircuitBreaker | None' = None) -> 'Any'"
    ),
    "Session.execute_batch": (
        "async (self, calls: 'CallSource', *, max_concurrency: 'int | None' = None, "
        "return_exceptions: 'bool' = False, timeout: 'float | None' = None, "
        "idempotent: 'bool' = False, kill_on_cancel: 'bool | None' = None, "
        "retry: 'RetryPolicy | None' = None, "
        "breaker: 'CircuitBreaker | None' = None) -> 'list[Any]'"
    ),
    "Session.get_variable": "(self, name: 'str') -> 'Any'",
    "Session.host_tool": (
        "(self, fn: 'F | None' = None, /, *, name: 'str | None' = None, "
        "description: 'str | None' = None) -> 'F | Callable[[F], F]'"
    ),
    "Session.id": "property -> str",
    "Session.list_variables": "(self) -> 'list[Variable]'",
    "Session.lost": "property -> bool",
    "Session.map": (
        "(self, tool: 'str', args: 'ArgsSource', *, max_concurrency: 'int | None' = None, "
        "ordered: 'bool' = True, return_exceptions: 'bool' = False, "
        "chunksize: \"int | Literal['auto']\" = 'auto', timeout: 'float | None' = None, "
        "idempotent: 'bool' = False, kill_on_cancel: 'bool | None' = None, "
        "retry: 'RetryPolicy | None' = None, "
        "breaker: 'CircuitBreaker | None' = None) -> 'ResultStream'"
    ),
    "Session.metadata": "property -> dict[str, Any]",
    "Session.register_host_tool": (
        "(self, fn: 'Callable[..., Any]', *, name: 'str | None' = None, "
        "description: 'str | None' = None) -> 'ToolSpec'"
    ),
    "Session.register_variable": (
        "(self, name: 'str', type: 'str', value: 'Any', *, min: 'float | None' = None, "
        "max: 'float | None' = None, choices: 'Any' = None, max_length: 'int | None' = None, "
        "description: 'str' = '') -> 'None'"
    ),
    "Session.set_variable": "(self, name: 'str', value: 'Any') -> 'None'",
    "Session.stream": (
        "(self, tool: 'str', args: 'dict[str, Any] | None' = None, *, "
        "timeout: 'float | None' = None, idle_timeout: 'float | None' = None, window: 'int' = 16, "
        "on_progress: 'ProgressCallback | None' = None, "
        "kill_on_cancel: 'bool | None' = None) -> 'AbstractAsyncContextManager[Stream]'"
    ),
    "Session.unregister_host_tool": "(self, name: 'str') -> 'bool'",
    "Session.worker_id": "property -> str | None",
    "SessionInfo": (
        "class (id: 'str', worker_id: 'str | None', affinity: 'str', calls: 'int', "
        "in_flight: 'int', idle: 'float', ttl: 'float | None', metadata: 'dict[str, Any]', "
        "lost: 'str | None') -> None"
    ),
    "SessionLost": "class(SnakepitError) (session_id: 'str', reason: 'str' = '') -> 'None'",
    "SessionQuotaExceeded": "class(SnakepitError) (max_sessions: 'int') -> 'None'",
    "SnakepitError": "class(Exception) (*args)",
    "Stream": "class: no public constructor",
    "Stream.close": "(self) -> 'None'",
    "Stream.finished": "property -> bool",
    "Stream.tool": "property -> str",
    "StreamIdleTimeout": "class(RequestTimeout) (tool: 'str', idle_timeout: 'float') -> 'None'",
    "TLSConfig": (
        "class (*, ca: 'str | None' = None, cert: 'str | None' = None, key: 'str | None' = None, "
        "server_hostname: 'str | None' = None) -> None"
    ),
    "TLSConfig.context": "(self) -> 'ssl.SSLContext'",
    "ToolSpec": (
        "class (name: 'str', description: 'str', streaming: 'bool', "
        "params: 'tuple[ParamSpec, ...]', accepts_extra: 'bool' = False) -> None"
    ),
    "UnknownHostTool": (
        "class(HostToolError) (tool: 'str', kind: 'str', message: 'str', "
        "remote_type: 'str' = '') -> 'None'"
    ),
    "UnknownTool": (
        "class(SnakepitError) (tool: 'str', available: 'list[str]', *, "
        "pools: 'dict[str, list[str]] | None' = None) -> 'None'"
    ),
    "Variable": (
        "class (name: 'str', type: 'str', value: 'Any', min: 'float | None' = None, "
        "max: 'float | None' = None, choices: 'tuple[Any, ...] | None' = None, "
        "max_length: 'int | None' = None, description: 'str' = '') -> None"
    ),
    "WorkerCrashed": (
        "class(SnakepitError) (worker_id: 'str', pid: 'int', exit_code: 'int | None', "
        "signal: 'int | None', stderr_tail: 'str', *, detail: 'str' = '', cause: 'str' = '', "
        "last_rss: 'int | None' = None, running: 'tuple[str, ...]' = ()) -> 'None'"
    ),
    "WorkerInfo": (
        "class (id: 'str', pid: 'int', state: 'str', requests: 'int', in_flight: 'int', "
        "uptime: 'float', rss: 'int | None', silent: 'float' = 0.0, "
        "calls: 'tuple[CallInfo, ...]' = (), accepting: 'bool' = True, "
        "gil_enabled: 'bool | None' = None, thread_safe: 'bool' = False, "
        "device: 'str | None' = None, runtime: 'str | None' = None) -> None"
    ),
    "WorkerStartError": (
        "class(SnakepitError) (worker_id: 'str', reason: 'str', stderr_tail: 'str' = '') -> 'None'"
    ),
    "contrib.otel.Instrumentation": "class: no public constructor",
    "contrib.otel.Instrumentation.close": "(self) -> 'None'",
    "contrib.otel.instrument": (
        "(pool: 'Pool', *, tracer_provider: 'Any' = None, meter_provider: 'Any' = None, "
        "metrics: 'bool' = True) -> 'Instrumentation'"
    ),
    "contrib.prometheus.PoolCollector": (
        "class(Collector) (*pools: 'Pool', registry: 'CollectorRegistry | None' = None, "
        "buckets: 'Iterable[float] | None' = None) -> 'None'"
    ),
    "contrib.prometheus.PoolCollector.add": "(self, pool: 'Pool') -> 'None'",
    "contrib.prometheus.PoolCollector.collect": "(self) -> 'Iterable[Metric]'",
    "contrib.prometheus.PoolCollector.describe": "(self) -> 'Iterable[Metric]'",
    "contrib.prometheus.PoolCollector.remove": "(self, pool: 'Pool') -> 'bool'",
    "contrib.prometheus.serve": (
        "async (port: 'int' = 9464, registry: 'CollectorRegistry | None' = None, *, "
        "host: 'str' = '127.0.0.1', "
        "task_status: 'trio.TaskStatus[int]' = TASK_STATUS_IGNORED) -> 'None'"
    ),
    "contrib.ray.RayLauncher": (
        "class (*, address: 'str | None' = None, num_cpus: 'float' = 1, num_gpus: 'float' = 0, "
        "resources: 'Mapping[str, float] | None' = NOTHING, "
        "runtime_env: 'Mapping[str, Any] | None' = None, strategy: 'Any' = 'DEFAULT', "
        "tls: 'bool' = True, init_options: 'Mapping[str, Any]' = NOTHING) -> None"
    ),
    "contrib.ray.RayLauncher.open_launcher": (
        "(self, "
        "config: 'PoolConfig') -> 'AbstractAsyncContextManager[Callable[[trio.Nursery], Any]]'"
    ),
    "load_pools": "(path: 'str | os.PathLike[str]') -> 'dict[str, PoolConfig]'",
    "open_pool": (
        "asynccontextmanager (adapter: 'str | None' = None, *, size: 'int | None' = None, "
        "config: 'PoolConfig | None' = None, "
        "**options: 'Unpack[PoolOptions]') -> 'AsyncIterator[Pool]'"
    ),
    "open_pools": (
        "asynccontextmanager (pools: 'Mapping[str, PoolConfig]') -> 'AsyncIterator[Pools]'"
    ),
    "register_type": (
        "(cls: 'type[T]', code: 'int', *, encode: 'Callable[[T], Any]', "
        "decode: 'Callable[[Any], T]') -> 'None'"
    ),
    "retry": (
        "async (policy: 'RetryPolicy', fn: 'Callable[..., Awaitable[T]]', *args: 'Any', "
        "idempotent: 'bool' = False) -> 'T'"
    ),
    "telemetry.Event": (
        "NamedTuple (name: ForwardRef('str'), measurements: ForwardRef('dict[str, float]'), "
        "metadata: ForwardRef('dict[str, Any]'), time: ForwardRef('float'))"
    ),
    "telemetry.PoolTelemetry": "class: no public constructor",
    "telemetry.PoolTelemetry.attach": (
        "(self, name: 'str', patterns: 'str | list[str]', "
        "handler: 'Callable[[Event], object]') -> 'None'"
    ),
    "telemetry.PoolTelemetry.detach": "(self, name: 'str') -> 'bool'",
    "telemetry.PoolTelemetry.dropped": "property -> int",
    "telemetry.PoolTelemetry.handlers": "property -> list[str]",
    "telemetry.PoolTelemetry.subscribe": (
        "(self, patterns: 'str | list[str]', *, "
        "buffer: 'int' = 1000) -> 'AbstractAsyncContextManager[Subscription]'"
    ),
    "telemetry.Subscription": "class: no public constructor",
    "telemetry.Subscription.dropped": "property -> int",
    "telemetry.Subscription.receive": "async (self) -> 'Event'",
    "telemetry.attach": (
        "(name: 'str', patterns: 'str | list[str]', handler: 'Callable[[Event], object]') -> 'None'"
    ),
    "telemetry.detach": "(name: 'str') -> 'bool'",
    "telemetry.subscribe": (
        "(patterns: 'str | list[str]', *, "
        "buffer: 'int' = 1000) -> 'AbstractAsyncContextManager[Subscription]'"
    ),
    "testing.Faults": "class: no public constructor",
    "testing.Faults.crash": (
        "(self, worker_id: 'str | None' = None, *, exit_code: 'int' = 1, "
        "signal: 'int | None' = None) -> 'str'"
    ),
    "testing.Faults.delay": "(self, seconds: 'float', worker_id: 'str | None' = None) -> 'None'",
    "testing.Faults.hang": "(self, worker_id: 'str | None' = None) -> 'str'",
    "testing.Faults.resume": "(self, worker_id: 'str') -> 'None'",
    "testing.Faults.started": "property -> int",
    "testing.faults": "(pool: 'Pool') -> 'Faults'",
    "testing.open_fake_pool": (
        "asynccontextmanager (adapter: 'type[Adapter] | str | None' = None, *, size: 'int' = 2, "
        "**options: 'Unpack[PoolOptions]') -> 'AsyncIterator[Pool]'"
    ),
    "testing.open_fake_pools": (
        "asynccontextmanager (pools: 'Mapping[str, PoolConfig]') -> 'AsyncIterator[Pools]'"
    ),
    "worker.Adapter": "class ()",
    "worker.Adapter.cleanup": "async (self) -> 'None'",
    "worker.Adapter.fork_safe": "attribute: ClassVar[bool] = True",
    "worker.Adapter.initialize": "async (self) -> 'None'",
    "worker.Adapter.on_session_end": "async (self, session_id: 'str') -> 'None'",
    "worker.Adapter.thread_safe": "attribute: ClassVar[bool] = False",
    "worker.Placement": (
        "class (device: 'str | None', kind: 'str | None', uuid: 'str | None', "
        "threads: 'int | None') -> None"
    ),
    "worker.ToolContext": (
        "class (request_id: 'int', session_id: 'str | None', deadline: 'float | None', "
        "progress: 'Callable[[float, float | None, str | None], None] | None' = None, "
        "clock: 'Callable[[], float]' = <built-in function monotonic>, "
        "host: 'HostCalls | None' = None) -> 'None'"
    ),
    "worker.ToolContext.acall_host_tool": (
        "async (self, name: 'str', args: 'dict[str, Any] | None' = None) -> 'Any'"
    ),
    "worker.ToolContext.ahost": "property -> HostTools",
    "worker.ToolContext.ahost_tools": "async (self) -> 'dict[str, dict[str, Any]]'",
    "worker.ToolContext.call_host_tool": (
        "(self, name: 'str', args: 'dict[str, Any] | None' = None) -> 'Any'"
    ),
    "worker.ToolContext.cancelled": "property -> bool",
    "worker.ToolContext.deadline": "attribute",
    "worker.ToolContext.emit": (
        "(self, name: 'str', measurements: 'dict[str, float] | None' = None, "
        "metadata: 'dict[str, Any] | None' = None) -> 'None'"
    ),
    "worker.ToolContext.host": "property -> HostTools",
    "worker.ToolContext.host_tools": "(self) -> 'dict[str, dict[str, Any]]'",
    "worker.ToolContext.progress": (
        "(self, done: 'float', total: 'float | None' = None, "
        "message: 'str | None' = None) -> 'None'"
    ),
    "worker.ToolContext.request_id": "attribute",
    "worker.ToolContext.session": "property -> SessionVariables",
    "worker.ToolContext.session_id": "attribute",
    "worker.ToolContext.span": (
        "(self, name: 'str', "
        "**attributes: 'str | float | bool | None') -> 'AbstractContextManager[None]'"
    ),
    "worker.ToolContext.time_remaining": "(self) -> 'float | None'",
    "worker.emit": (
        "(name: 'str', measurements: 'dict[str, float] | None' = None, "
        "metadata: 'dict[str, Any] | None' = None) -> 'None'"
    ),
    "worker.placement": "() -> 'Placement'",
    "worker.register_type": (
        "(cls: 'type[T]', code: 'int', *, encode: 'Callable[[T], Any]', "
        "decode: 'Callable[[Any], T]') -> 'None'"
    ),
    "worker.span": (
        "(name: 'str', **attributes: 'str | float | bool | None') -> 'AbstractContextManager[None]'"
    ),
    "worker.tool": (
        "(fn: 'F | None' = None, /, *, name: 'str | None' = None, "
        "description: 'str | None' = None, streaming: 'bool | None' = None, "
        "exclusive: 'bool' = False) -> 'F | Callable[[F], F]'"
    ),
    "writable": "(value: 'Any') -> 'Any'",
}


# --- what the surface is ---------------------------------------------------------------
def exported() -> dict[str, object]:
    """Every public name: ``Pool`` for snakepit_trio's, ``worker.tool`` for the worker's."""
    out: dict[str, object] = {}
    for package in PACKAGES:
        prefix = package.__name__.removeprefix("snakepit_trio").lstrip(".")
        for name in package.__all__:
            out[f"{prefix}.{name}" if prefix else name] = getattr(package, name)
    return out


def _ours(klass: type) -> bool:
    return klass.__module__.split(".")[0] == "snakepit_trio"


def public_members(cls: type) -> dict[str, object]:
    """Public attributes that ``cls`` or its bases in this package define (not Exception's)."""
    members: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        if _ours(klass):
            members.update((k, v) for k, v in vars(klass).items() if not k.startswith("_"))
    if attrs.has(cls):  # fields are the constructor's parameters, pinned with it
        for field in attrs.fields(cls):
            members.pop(field.name, None)
    for field in getattr(cls, "_fields", ()) if issubclass(cls, tuple) else ():  # NamedTuple
        members.pop(field, None)
    return members


def _signature(obj: typing.Callable[..., object]) -> str:
    return str(inspect.signature(obj))


def _describe_callable(fn: typing.Callable[..., object]) -> str:
    wrapped = getattr(fn, "__wrapped__", None)
    if inspect.iscoroutinefunction(fn):
        kind = "async "
    elif wrapped is not None and inspect.isasyncgenfunction(wrapped):
        kind = "asynccontextmanager "  # @asynccontextmanager: the signature is the generator's
    else:
        kind = ""
    return kind + _signature(fn)


def _describe_class(cls: type) -> str:
    if typing.is_typeddict(cls):
        return f"TypedDict(total={cls.__total__})"  # type: ignore[attr-defined]
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return f"NamedTuple {_signature(cls)}"
    bases = ", ".join(b.__qualname__ for b in cls.__bases__ if b is not object)
    head = f"class({bases})" if bases else "class"
    if isinstance(cls, NoPublicConstructor):
        return f"{head}: no public constructor"
    init_owner = next(k for k in cls.__mro__ if "__init__" in vars(k))
    if init_owner is object:
        return f"{head} ()"
    if not _ours(init_owner):  # Exception's own constructor
        return f"{head} (*args)"
    return f"{head} {_signature(cls)}"


def _describe_member(cls: type, name: str, value: object) -> str:
    if isinstance(value, property):
        assert value.fget is not None
        return f"property -> {inspect.signature(value.fget).return_annotation}"
    if isinstance(value, classmethod):
        return "classmethod " + _signature(getattr(cls, name))
    if isinstance(value, staticmethod):
        return "staticmethod " + _signature(value.__func__)
    if isinstance(value, types.FunctionType):
        return _describe_callable(value)
    if isinstance(value, types.MemberDescriptorType):
        return "attribute"
    annotations = [vars(k).get("__annotations__", {}) for k in cls.__mro__]
    annotation = next((a[name] for a in annotations if name in a), "?")
    return f"attribute: {annotation} = {value!r}"


def surface() -> dict[str, str]:
    """Every public name and public member, with what it is and its signature."""
    table: dict[str, str] = {}
    for name, obj in exported().items():
        if isinstance(obj, type):
            table[name] = _describe_class(obj)
            for member, value in public_members(obj).items():
                table[f"{name}.{member}"] = _describe_member(obj, member, value)
        else:
            assert callable(obj), name
            table[name] = _describe_callable(obj)
    return dict(sorted(table.items()))


def public_callables() -> dict[str, typing.Callable[..., object]]:
    """Exported functions and public methods of exported classes (not dunders, properties)."""
    out: dict[str, typing.Callable[..., object]] = {}
    for name, obj in exported().items():
        if not isinstance(obj, type):
            out[name] = typing.cast(typing.Callable[..., object], obj)
            continue
        for member, value in public_members(obj).items():
            fn = value.__func__ if isinstance(value, classmethod | staticmethod) else value
            if isinstance(fn, types.FunctionType):
                out[f"{name}.{member}"] = fn
    return out


# --- one list ------------------------------------------------------------------------------
def _type_checking_imports() -> list[tuple[str, str, str | None]]:
    """(name, module, alias) for each import in ``if TYPE_CHECKING:`` of ``__init__.py``."""
    tree = ast.parse(Path(snakepit_trio.__file__).read_text())
    blocks = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    ]
    assert len(blocks) == 1, "expected one `if TYPE_CHECKING:` block in __init__.py"
    found = []
    for stmt in blocks[0].body:
        assert isinstance(stmt, ast.ImportFrom), ast.unparse(stmt)
        module = "." * stmt.level + (stmt.module or "")
        found.extend((alias.name, module, alias.asname) for alias in stmt.names)
    return found


def test_type_checking_block_matches_exports() -> None:
    imports = _type_checking_imports()
    # `X as X` is what marks a re-export for type checkers (mypy's implicit_reexport=False).
    assert [name for name, _, alias in imports if alias != name] == []
    assert len(imports) == len({name for name, _, _ in imports}), "a name imported twice"
    assert {(name, module) for name, module, _ in imports} == set(snakepit_trio._EXPORTS.items())


def test_all_is_the_export_list() -> None:
    assert snakepit_trio.__all__ == list(snakepit_trio._EXPORTS)
    assert set(snakepit_trio.__all__) <= set(dir(snakepit_trio))
    assert snakepit_trio.worker.__all__ == [
        "Adapter",
        "Placement",
        "ToolContext",
        "emit",
        "placement",
        "register_type",
        "span",
        "tool",
    ]


def test_each_name_comes_from_its_module_and_reads_as_public() -> None:
    for name, module in snakepit_trio._EXPORTS.items():
        obj = getattr(snakepit_trio, name)
        assert obj is getattr(importlib.import_module(module, "snakepit_trio"), name), name
        assert obj.__module__ == "snakepit_trio", name
        assert obj.__name__ == name
    for name in snakepit_trio.worker.__all__:
        obj = getattr(snakepit_trio.worker, name)
        if name in snakepit_trio._EXPORTS:  # one function, shown where the host finds it
            assert obj is getattr(snakepit_trio, name) and obj.__module__ == "snakepit_trio"
        else:
            assert obj.__module__ == "snakepit_trio.worker", name


def test_reprs_and_tracebacks_name_the_package() -> None:
    assert repr(snakepit_trio.Pool) == "<class 'snakepit_trio.Pool'>"
    assert repr(snakepit_trio.worker.Adapter) == "<class 'snakepit_trio.worker.Adapter'>"
    assert snakepit_trio.Pool.execute.__module__ == "snakepit_trio"
    line = traceback.format_exception_only(snakepit_trio.PoolClosed("closed"))[-1]
    assert line == "snakepit_trio.PoolClosed: closed\n"


def test_import_is_lazy_and_metadata_needs_no_lookup() -> None:
    code = (
        "import sys, snakepit_trio, snakepit_trio.worker\n"
        "snakepit_trio.register_type\n"  # a module shared with workers may call it
        "print('trio' in sys.modules)\n"
        "snakepit_trio.open_pool\n"  # imports the engine, and with it every error class
        "from snakepit_trio._errors import WorkerCrashed\n"
        "print(WorkerCrashed.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out == ["False", "snakepit_trio"]


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        snakepit_trio.no_such_thing  # noqa: B018


# --- signatures ----------------------------------------------------------------------------
def test_signatures_are_pinned() -> None:
    assert surface() == EXPECTED


def test_pool_options_list_every_config_field() -> None:
    """``open_pool(**options: Unpack[PoolOptions])``: the TypedDict is hand-written."""
    fields = {f.name: f.type for f in attrs.fields(snakepit_trio.PoolConfig)}
    separate = {"adapter", "size"}  # open_pool's own parameters
    options = {
        k: v.__forward_arg__ if isinstance(v, typing.ForwardRef) else v
        for k, v in snakepit_trio.PoolOptions.__annotations__.items()
    }
    assert set(options) == set(fields) - separate
    # the field converts what it is given
    converted = {
        "pythonpath": "Sequence[str]",
        "worker_command": "Sequence[str] | None",
        "devices": "str | Sequence[str | Device] | None",
        "tools": "Sequence[str | Callable[..., Any]]",
        "endpoints": "Sequence[str]",
        "token": "str | bytes | None",
    }
    for name, type_ in options.items():
        assert type_ == converted.get(name, fields[name]), name
    assert snakepit_trio.PoolOptions.__total__ is False


# Keyword catch-alls whose names are the caller's by design (a span's attributes): each
# value is typed, the names are free.
FREE_KEYWORDS = {"worker.ToolContext.span", "worker.span"}


def test_no_untyped_keyword_catch_all() -> None:
    for name, fn in public_callables().items():
        for p in inspect.signature(fn).parameters.values():
            if p.kind is not inspect.Parameter.VAR_KEYWORD:
                continue
            if name in FREE_KEYWORDS:
                assert p.annotation not in ("Any", inspect.Parameter.empty), name
            else:
                assert str(p.annotation).startswith("Unpack["), f"{name}: **{p.name}"


# --- errors and handles --------------------------------------------------------------------
def test_every_error_derives_from_snakepit_error() -> None:
    errors = {
        name
        for name, obj in exported().items()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    }
    assert errors == set(ERROR_NAMES)
    for name in errors:
        assert issubclass(getattr(snakepit_trio, name), snakepit_trio.SnakepitError)


@pytest.mark.parametrize("name", ["Pool", "Pools", "Session", "Stream"])
def test_handles_have_no_public_constructor(name: str) -> None:
    cls = getattr(snakepit_trio, name)
    with pytest.raises(TypeError, match=rf"snakepit_trio\.{name} has no public constructor"):
        cls()
    with pytest.raises(TypeError, match="no public constructor"):
        cls(object(), object())


def test_fault_injectors_come_from_faults() -> None:
    with pytest.raises(TypeError, match=r"snakepit_trio\.testing\.Faults has no public"):
        snakepit_trio.testing.Faults(object())  # type: ignore[call-arg]


# --- docstrings ----------------------------------------------------------------------------
def _section(doc: str, title: str) -> list[str] | None:
    """The lines of a Google-style section (``Args:``), dedented; None if it is missing."""
    lines = doc.splitlines()
    try:
        start = lines.index(f"{title}:")
    except ValueError:
        return None
    body = []
    for line in lines[start + 1 :]:
        if line and not line[0].isspace():
            break
        body.append(line)
    while body and not body[-1].strip():
        body.pop()
    indent = min((len(x) - len(x.lstrip()) for x in body if x.strip()), default=0)
    return [x[indent:] for x in body]


def _documented_params(args: list[str]) -> list[str]:
    """Parameter names in an Args section: each entry is ``name[, name...]: text``."""
    entries: list[str] = []
    for line in args:
        if line and not line[0].isspace():
            entries.append(line)
        elif entries:
            entries[-1] += " " + line.strip()
    names = []
    for entry in entries:
        head, colon, _ = entry.partition(":")
        assert colon, f"an Args entry without a colon: {entry!r}"
        names.extend(n.strip().lstrip("*") for n in head.split(","))
    return names


@pytest.mark.parametrize("name", sorted(public_callables()))
def test_docstring_sections(name: str) -> None:
    fn = public_callables()[name]
    doc = inspect.getdoc(fn)
    assert doc, f"{name} has no docstring"
    sig = inspect.signature(fn)
    params = list(sig.parameters)
    owner = exported().get(name.rpartition(".")[0])
    if isinstance(owner, type) and params[:1] in (["self"], ["cls"]):  # a method's own
        params = params[1:]
    args = _section(doc, "Args")
    if params:
        assert args is not None, f"{name}: no Args: section"
        documented = _documented_params(args)
        assert sorted(documented) == sorted(params), f"{name}: Args: lists {documented}"
    else:
        assert args is None, f"{name} takes no arguments but has an Args: section"
    if sig.return_annotation not in ("None", None):
        assert _section(doc, "Returns"), f"{name}: no Returns: section"
    assert _section(doc, "Raises"), f"{name}: no Raises: section"


# --- regenerating EXPECTED -----------------------------------------------------------------
def format_table(table: dict[str, str], width: int = 100) -> str:
    """``table`` as the body of a dict display, lines wrapped to ``width`` as ruff would."""
    out = []
    for key, value in table.items():
        one = f"    {_quote(key)}: {_quote(value)},"
        if len(one) <= width:
            out.append(one)
            continue
        out.append(f"    {_quote(key)}: (")
        chunks: list[str] = []
        for part in _top_level_parts(value):
            if chunks and len(_quote(chunks[-1] + part)) + 8 <= width:
                chunks[-1] += part
            else:
                chunks.append(part)
        out.extend(f"        {_quote(c)}" for c in chunks)
        out.append("    ),")
    return "\n".join(out)


def _top_level_parts(text: str) -> list[str]:
    """``text`` cut after each ``", "`` outside brackets and quotes (parameter by parameter)."""
    parts, start, depth, quote = [], 0, 0, False
    for i, char in enumerate(text):
        if char == "'":
            quote = not quote
        elif not quote and char in "([":
            depth += 1
        elif not quote and char in ")]":
            depth -= 1
        elif not quote and depth == 1 and text.startswith(", ", i):
            parts.append(text[start : i + 2])
            start = i + 2
    return [*parts, text[start:]]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    print(format_table(surface()))
