"""Pool configuration: a frozen value, validated when built."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict

import attrs

from . import _remote
from ._core import _checks as checks
from ._core._backoff import RestartPolicy
from ._remote import TLSConfig, WorkerLauncher
from ._shared._codec import DEFAULT_MAX_PAYLOAD
from ._shared._functions import FORM, split_entry
from .hardware._model import Device
from .hardware._plan import normalize as _normalize_devices

__all__ = ["PoolConfig", "PoolOptions", "RestartPolicy", "TLSConfig"]

# Seconds past drain_timeout + shutdown_grace that stopping a pool may take at most (a last
# bound, for a supervisor that misbehaves; every stop is SIGTERM -> grace -> SIGKILL).
STOP_MARGIN = 5.0


def _adapter_spec(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        if instance.runtime != "python":
            raise TypeError(
                f"runtime={instance.runtime!r} needs an adapter (for Node.js, the path of "
                "its module file); tools=[...] serves Python functions only"
            )
        if not instance.tools:
            raise TypeError(
                "open_pool() needs an adapter ('package.module:ClassName'), tools="
                f"[{FORM}, ...], or both"
            )
        return
    if instance.runtime != "python" or instance.worker_command is not None:
        # Another runtime's adapter is a file (or whatever its worker_command takes).
        checks.text("adapter", value, empty=False)
        return
    if isinstance(value, type):  # the class itself, as open_fake_pool accepts
        where = f"{value.__module__}:{value.__qualname__}"
        move = " from a module of its own" if where.startswith("__main__:") else ""
        raise TypeError(
            f"adapter must be a str 'package.module:ClassName' naming the class for the "
            f"workers to import, not the class itself; pass {where!r}{move}"
        )
    checks.text("adapter", value)
    module, sep, name = value.partition(":")
    if not (sep and module and name):
        raise ValueError(f"adapter must look like 'package.module:ClassName', got {value!r}")


# Validators by kind of value; each names the field in its error (see _core/_checks.py).
def _seconds(*, zero: bool = False, none: str | None = None) -> Any:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        checks.number(attribute.name, value, zero=zero, none=none)

    return check


def _whole(*, minimum: int = 1, none: str | None = None, unit: str = "") -> Any:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        checks.whole(attribute.name, value, minimum=minimum, none=none, unit=unit)

    return check


def _flag(instance: Any, attribute: Any, value: Any) -> None:
    checks.flag(attribute.name, value)


def _choice(choices: tuple[str, ...], variable: str) -> Any:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        from_env = value is not None and os.environ.get(variable) == value
        checks.choice(attribute.name, value, choices, source=f"${variable}" if from_env else "")

    return check


def _megabytes(instance: Any, attribute: Any, value: Any) -> None:
    checks.number(attribute.name, value, none="no limit", unit="megabytes")


def _restart(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, RestartPolicy):
        raise TypeError(
            f"restart must be a RestartPolicy(initial=..., factor=..., max_delay=..., "
            f"reset_after=...); got {checks.shown(value)} ({checks.a_type(value)})"
        )


def _name(instance: Any, attribute: Any, value: Any) -> None:
    checks.text(attribute.name, value, empty=False)


# Converters (named functions, as the attrs plugin of mypy wants). Paths may also be given as
# os.PathLike (a pathlib.Path); the configuration keeps them as str.
def _path(value: str) -> str:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _path_or_none(value: str | None) -> str | None:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _paths(value: Sequence[str]) -> tuple[str, ...]:
    wrong = f"pythonpath must be a list of directories; got {checks.shown(value)}"
    if isinstance(value, str | bytes | os.PathLike):
        raise TypeError(f"{wrong} ({checks.a_type(value)}); pass [{checks.shown(value)}]")
    try:
        paths = tuple(_path(p) for p in value)
    except TypeError:
        raise TypeError(f"{wrong} ({checks.a_type(value)})") from None
    for p in paths:
        if not isinstance(p, str):
            raise TypeError(
                f"pythonpath must hold directories as str; got {checks.shown(p)} "
                f"({checks.a_type(p)}) in it"
            )
    return paths


def _tools(value: Sequence[str | Callable[..., Any]]) -> tuple[str, ...]:
    wrong = f"tools must be a list of {FORM} entries (or of such functions)"
    got = f"got {checks.shown(value)} ({checks.a_type(value)})"
    if isinstance(value, str | bytes) or callable(value):
        fix = f"[{checks.shown(value)}]" if isinstance(value, str) else "a list of them"
        raise TypeError(f"{wrong}; {got}: pass {fix}")
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{wrong}; {got}") from None
    entries = tuple(_tool_entry(item) for item in items)
    for i, entry in enumerate(entries):
        if entry in entries[:i]:
            raise ValueError(f"tools lists {entry!r} twice")
    return entries


def _tool_entry(item: object) -> str:
    """A tools entry as a str: given so, or read off a module-level function."""
    if isinstance(item, str):
        split_entry(item)
        return item
    if isinstance(item, type):
        raise TypeError(
            f"tools holds functions, and {item.__module__}:{item.__qualname__} is a class; "
            "an Adapter subclass is the pool's adapter (open_pool('module:Class', "
            "tools=[...])), any other class is used from a function"
        )
    name = getattr(item, "__qualname__", None)
    module = getattr(item, "__module__", None)
    if not (callable(item) and isinstance(name, str) and isinstance(module, str)):
        raise TypeError(
            f"tools entries must be {FORM} str or module-level functions; got "
            f"{checks.shown(item)} ({checks.a_type(item)})"
        )
    entry = f"{module}:{name}"
    split_entry(entry)
    return entry


def _env(value: Mapping[str, str]) -> dict[str, str]:
    checks.mapping("env", value)
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(
                "env must map str names to str values (as os.environ does); got "
                f"{checks.shown(key)}: {checks.shown(item)} ({checks.a_type(key)}: "
                f"{checks.a_type(item)})"
            )
    return dict(value)


def _path_value(*, none: str | None = None) -> Any:
    def check(instance: Any, attribute: Any, value: Any) -> None:
        checks.text(attribute.name, value, none=none, empty=False)

    return check


RUNTIMES = ("python", "node")  # the runtimes whose workers the pool knows how to start


def _runtime(instance: Any, attribute: Any, value: object) -> None:
    checks.text("runtime", value, empty=False)
    assert isinstance(value, str)
    if value not in RUNTIMES and instance.worker_command is None:
        raise ValueError(
            f"runtime={value!r} has no built-in worker; valid runtimes: "
            f"{', '.join(RUNTIMES)}, or pass worker_command=[...] that starts a worker "
            "speaking proto/snakepit/v1/worker.proto"
        )


def _command(value: Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    wrong = "worker_command must be a list of str (the program and its arguments)"
    if isinstance(value, str | bytes | os.PathLike):
        raise TypeError(f"{wrong}; got {checks.shown(value)}: pass [{checks.shown(value)}]")
    try:
        argv = tuple(_path(a) for a in value)
    except TypeError:
        raise TypeError(f"{wrong}; got {checks.shown(value)} ({checks.a_type(value)})") from None
    if not argv:
        raise ValueError(f"{wrong}; got an empty list")
    for arg in argv:
        if not isinstance(arg, str):
            raise TypeError(f"{wrong}; got {checks.shown(arg)} ({checks.a_type(arg)}) in it")
    return argv


def _worker_output(instance: Any, attribute: Any, value: object) -> None:
    checks.choice(attribute.name, value, ("log", "inherit"))


def _profile(instance: Any, attribute: Any, value: object) -> None:
    checks.choice(attribute.name, value, ("process", "thread"))


def _devices(value: str | Sequence[str | Device] | None) -> str | tuple[str, ...] | None:
    return _normalize_devices(value)


_THREADS_ALLOWED = (
    "a whole number of threads >= 1, 'auto' (the CPUs this process may use, shared out "
    "among the workers) or None (leave the thread variables alone)"
)


def _threads(instance: Any, attribute: Any, value: object) -> None:
    if value is None or (isinstance(value, str) and value == "auto"):
        return
    try:
        checks.whole(attribute.name, value, unit="threads")
    except (TypeError, ValueError) as exc:
        # A str is one of the allowed types: a wrong one is a wrong value.
        error = ValueError if isinstance(value, str) else type(exc)
        hint = checks.did_you_mean(value, ("auto",)) if isinstance(value, str) else ""
        raise error(
            f"{attribute.name} must be {_THREADS_ALLOWED}; got {checks.shown(value)}{hint}"
        ) from None


def _default_size() -> int:
    return max(os.cpu_count() or 1, 1)


@attrs.frozen(kw_only=True)
class PoolConfig:
    """Everything ``open_pool`` needs; every field is also an ``open_pool`` keyword.

    Attributes:
        adapter: ``"package.module:AdapterClass"``, importable in the worker; with
            ``runtime="node"``, the path of the adapter's module file (``"./adapter.mjs"``).
            None: no adapter, the pool serves its ``tools`` alone.
        tools: module-level functions the workers serve as tools, beside the adapter's
            ``@tool`` methods (or alone), each ``"package.module:function"`` (a function
            given instead is kept as that entry; it must be importable: not a lambda, not
            nested in another function, not defined in ``__main__``). Each worker imports
            the module (the template imports it once for forked workers) and serves the
            function under the name after the colon, as a method is served: its signature
            gives the parameters, ``async def`` runs on the worker's loop, ``def`` in a tool
            thread, a generator streams, a ``ToolContext`` parameter gets the context, and
            ``@tool(name=..., description=..., exclusive=...)`` on it applies. Its
            description is its docstring's first line. A name the adapter (or another
            entry) has already is refused when the worker starts (WorkerStartError).
            Python workers only.
        size: number of worker processes.
        worker_capacity: calls each worker runs at once, sync, async and streaming ones
            together (>1 runs sync tools in that many threads, sharing the adapter).
        profile: ``"process"`` (default): parallelism comes from processes; a
            ``worker_capacity`` above 1 with sync tools on an adapter that does not declare
            ``thread_safe = True`` logs a warning. ``"thread"``: few processes, each running
            ``worker_capacity`` calls at once in threads; the adapter must declare
            ``thread_safe = True`` (else ``open_pool`` raises WorkerStartError saying so).
        max_queue: calls allowed to wait for a worker; beyond it ``PoolSaturated``. None: no bound.
        queue_timeout: longest wait for a free worker before ``QueueTimeout``. None: no limit.
        timeout: default per-call budget (queue wait + execution), or None.
        startup_timeout: seconds a worker may take to import, initialize and serve.
        startup_batch_size: workers started at the same time.
        drain_timeout: on exit, how long in-flight calls may still finish.
        shutdown_grace: seconds between SIGTERM and SIGKILL of a worker's process group.
        max_payload_bytes: largest encoded arguments, result or chunk.
        shm_threshold: buffers (bytes, bytearray, memoryview, numpy arrays, DLPack
            tensors, Arrow tables' IPC streams) of at least this many bytes travel through
            shared memory instead of the socket, and arrays and tables arrive as read-only
            views of it, without a copy (Linux; elsewhere they travel inline). None: always
            inline.
        transport: how calls reach workers: ``"local"`` (the same frames as gRPC's Connect
            stream, length-prefixed over the worker's unix socket and driven by Trio itself:
            several times cheaper per message) or ``"grpc"`` (the Connect stream, through
            grpclib on a helper thread). Default: ``$SNAKEPIT_TRIO_TRANSPORT``, else "local".
            Describe and Health stay on gRPC either way.
        start_method: how worker processes start: ``"zygote"`` forks them from a template
            process that imported the worker runtime and the adapter module once (a few ms
            per worker instead of a fresh interpreter's import, and shared memory pages);
            ``"spawn"`` starts each as a fresh interpreter; ``"auto"`` (default:
            ``$SNAKEPIT_TRIO_START_METHOD``, else "auto") forks where that is safe (Linux,
            and importing the adapter module started no thread, left no file or socket
            open and did not initialise CUDA, and its class does not set
            ``fork_safe = False``) and spawns otherwise. Each worker calls its adapter's
            ``__init__`` and ``initialize()`` itself either way; only module imports are
            shared.
        prefetch: most extra calls a worker may hold queued while its calls are short.
        prefetch_budget: a worker holds as many extra calls as fit in this many seconds of
            its moving-average run time; calls longer than this are never prefetched, so
            they wait in the pool queue instead (no head-of-line blocking behind them).
        max_requests: replace a worker after it has been sent this many calls.
        max_memory_mb: replace a worker whose RSS exceeds this, after its running calls.
        max_age: replace a worker after this many seconds.
            Recycling starts the replacement at once and stops the old worker when its
            calls have finished; a worker holding strict sessions is recycled only after
            they close (recycling it would lose their state).
        max_retries: an idempotent call whose worker dies is re-run at most this many times
            (on another worker when there is one); 0 never re-runs.
        kill_on_cancel: default for calls and streams: kill and replace a worker whose
            cancelled (or timed out) call has not stopped ``cancel_grace`` seconds later.
        cancel_grace: seconds a cancelled call may take to stop before kill_on_cancel acts.
        max_sessions: most sessions open at once (``SessionQuotaExceeded`` beyond). None: no bound.
        session_ttl: default idle seconds before a session expires. None: never.
        restart: backoff between restarts of a crashed worker (exponential, capped).
        crash_threshold: this many crashes (including replacements that fail to start)
            within ``crash_window`` seconds make the pool unhealthy: calls fail at once with
            ``PoolUnhealthy`` until a probe call succeeds. None: never.
        crash_window: seconds over which crashes are counted.
        probe_after: seconds after the last crash before one probe call is let through.
        heartbeat_interval: a worker silent this long is sent a heartbeat (a worker at an
            endpoint gets one at least this often, so its ``--orphan-timeout`` sees a live
            host).
        heartbeat_timeout: a worker silent this long (stopped, or blocked in code holding
            the GIL) is killed and replaced; silent for two intervals, it gets no new calls.
            For a worker at an endpoint, the silence is a lost link: its calls fail with
            cause "disconnected" and the slot reconnects. None: no heartbeats (endpoint
            workers are still sent them). Raise it if your tools hold the GIL in C code for
            longer.
        handle_sigterm: on SIGTERM (when the program has no handler of its own), drain and
            stop every pool's workers, then let SIGTERM end the process as it would have.
        registry: record workers in a sqlite file, so that leftovers of a host that was
            killed are found and killed by the next ``open_pool`` or by
            ``snakepit-trio cleanup``.
        state_dir: where that file lives (default: ``$SNAKEPIT_TRIO_STATE_DIR``, else the
            user state directory, e.g. ``~/.local/state/snakepit-trio``).
        name: used in worker ids, thread names and logs.
        python: interpreter that runs the workers.
        runtime: the language of the workers: ``"python"`` (default) or ``"node"``
            (``node`` on PATH, Node.js 20 or later, runs the worker of the
            ``snakepit-trio-worker`` npm package: found in ``node_modules`` beside the
            adapter or above it, else ``$SNAKEPIT_TRIO_NODE_WORKER``). Workers of other
            runtimes start fresh (``start_method`` is for Python workers) and receive
            payloads inline (no shared memory). Any other name needs ``worker_command``.
        worker_command: the program that starts one worker, with its arguments, for a
            worker of any language that speaks ``proto/snakepit/v1/worker.proto``
            (``["ruby", "worker.rb"]``); the pool appends the worker flags (``--adapter``,
            ``--tool`` per tools entry, ``--socket``, ``--ready-fd``, ...). It replaces
            ``python -m snakepit_trio.worker`` or the Node worker. None (default): the
            runtime's own.
        env: extra environment variables for the workers.
        cwd: the workers' working directory (default: the host's).
        pythonpath: extra import paths, searched before the inherited ones.
        inherit_path: give workers the host's ``sys.path``, so whatever the host can import,
            the workers can too.
        endpoints: workers someone else started on other hosts (or this one), each
            ``"tcp://HOST:PORT"`` where ``python -m snakepit_trio.worker --listen ...``
            listens; the pool connects to them instead of starting processes, one slot per
            endpoint (``size`` is their number). A worker whose connection breaks fails
            its running calls with ``WorkerCrashed(cause="disconnected")`` and its slot
            reconnects with ``restart``'s backoff. Payloads travel inline, except with a
            worker that proves in its handshake that it is on this host and sees this
            host's shared memory (then ``shm_threshold`` applies to it as to local workers).
        token: the secret the endpoints' ``--token-file`` holds (needed with
            ``endpoints``); the host proves it without sending it. Never shown in reprs.
        tls: a ``TLSConfig`` to reach the endpoints over TLS 1.3, or None for plain TCP
            (a trusted network only: the calls' data then travel in the clear).
        launcher: what starts the workers somewhere else, instead of this machine's
            processes: ``snakepit_trio.contrib.ray.RayLauncher(...)`` places each on a Ray
            cluster. The pool reaches them over TCP with TLS, pinning the certificate the
            launcher reports; payloads travel inline. None (default): local processes.
        tracing: trace every call with OpenTelemetry (a CLIENT span per call, its context
            carried to the worker, whose SERVER span is its child) and record the pool's
            metrics, with the global tracer and meter providers; needs the ``otel`` extra.
            ``snakepit_trio.contrib.otel.instrument(pool, ...)`` takes providers of your own.
        worker_output: where workers' stdout and stderr go. ``"log"`` (default): the host
            reads them and logs each line to the ``snakepit_trio.worker`` logger (stderr at
            WARNING, stdout at INFO, with ``worker_id`` and ``stream`` on each record;
            lines longer than 4096 characters are cut), and keeps the last stderr lines
            for ``WorkerCrashed`` and ``WorkerStartError``. ``"inherit"``: both go straight
            to the host's stderr (file descriptor 2), as the worker wrote them (a terminal
            stays a terminal); the host reads nothing, so errors carry no stderr tail.
        max_host_tool_calls: host tools (``register_host_tool``) running at once; calls
            beyond it wait their turn.
        max_reentry_depth: how deep calls may nest through host tools (a worker tool calls
            a host tool that calls the pool, ...); a deeper call raises ReentrancyError.
            0: host tools may not call the pool at all.
        devices: pin each worker to one device, by slot: slot ``i`` gets device
            ``i % n`` for the pool's life (a replacement gets its slot's device again).
            ``"cuda"`` or ``"rocm"``: every device of that kind this process may use;
            or a list of device uuids (``"GPU-…"``, ``"MIG-…"``; ``"rocm:GPU-…"`` for AMD;
            ``hardware.Device`` values). A worker's ``CUDA_VISIBLE_DEVICES`` (ROCm:
            ``ROCR_VISIBLE_DEVICES``) holds its device alone, and ``SNAKEPIT_TRIO_DEVICE``
            says which (``snakepit_trio.worker.placement()``). Only devices the host's own
            mask lets through are used; a device named outside it is refused when the pool
            opens. None (default): workers inherit the host's devices.
        threads_per_worker: the thread count each worker's BLAS and OpenMP libraries get
            (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ...), so
            N workers do not each start a thread per core. Default 1. ``"auto"``: the CPUs
            this process may use (affinity and cgroup quota) divided by ``size`` and by
            ``worker_capacity``, at least 1. A variable you set (in the host's environment
            or ``env``) keeps your value. Workers forked from the template also get it
            for libraries already loaded there (through threadpoolctl). None: the pool
            leaves these variables alone.
    """

    adapter: str | None = attrs.field(
        default=None, converter=_path_or_none, validator=_adapter_spec
    )
    tools: tuple[str, ...] = attrs.field(default=(), converter=_tools)
    size: int = attrs.field(factory=_default_size, validator=_whole(unit="workers"))
    worker_capacity: int = attrs.field(default=1, validator=_whole(unit="calls"))
    profile: str = attrs.field(default="process", validator=_profile)
    max_queue: int | None = attrs.field(
        default=None, validator=_whole(minimum=0, none="no bound", unit="calls")
    )
    queue_timeout: float | None = attrs.field(default=None, validator=_seconds(none="no limit"))
    timeout: float | None = attrs.field(default=None, validator=_seconds(none="no limit"))
    startup_timeout: float = attrs.field(default=30.0, validator=_seconds())
    startup_batch_size: int = attrs.field(default=8, validator=_whole(unit="workers"))
    drain_timeout: float = attrs.field(default=10.0, validator=_seconds(zero=True))
    shutdown_grace: float = attrs.field(default=5.0, validator=_seconds(zero=True))
    max_payload_bytes: int = attrs.field(
        default=DEFAULT_MAX_PAYLOAD, validator=_whole(unit="bytes")
    )
    shm_threshold: int | None = attrs.field(
        default=1 << 20, validator=_whole(none="always inline", unit="bytes")
    )
    transport: str = attrs.field(
        factory=lambda: os.environ.get("SNAKEPIT_TRIO_TRANSPORT", "local"),
        validator=_choice(("local", "grpc"), "SNAKEPIT_TRIO_TRANSPORT"),
    )
    start_method: str = attrs.field(
        factory=lambda: os.environ.get("SNAKEPIT_TRIO_START_METHOD", "auto"),
        validator=_choice(("auto", "zygote", "spawn"), "SNAKEPIT_TRIO_START_METHOD"),
    )
    prefetch: int = attrs.field(default=64, validator=_whole(minimum=0, unit="calls"))
    prefetch_budget: float = attrs.field(default=0.002, validator=_seconds(zero=True))
    max_requests: int | None = attrs.field(
        default=None, validator=_whole(none="no limit", unit="calls")
    )
    max_memory_mb: float | None = attrs.field(default=None, validator=_megabytes)
    max_age: float | None = attrs.field(default=None, validator=_seconds(none="no limit"))
    max_retries: int = attrs.field(default=1, validator=_whole(minimum=0))
    kill_on_cancel: bool = attrs.field(default=False, validator=_flag)
    cancel_grace: float = attrs.field(default=1.0, validator=_seconds(zero=True))
    max_sessions: int | None = attrs.field(
        default=None, validator=_whole(none="no bound", unit="sessions")
    )
    session_ttl: float | None = attrs.field(default=None, validator=_seconds(none="never expire"))
    restart: RestartPolicy = attrs.field(factory=RestartPolicy, validator=_restart)
    crash_threshold: int | None = attrs.field(
        default=5, validator=_whole(none="never unhealthy", unit="crashes")
    )
    crash_window: float = attrs.field(default=10.0, validator=_seconds())
    probe_after: float = attrs.field(default=5.0, validator=_seconds(zero=True))
    heartbeat_interval: float = attrs.field(default=0.5, validator=_seconds())
    heartbeat_timeout: float | None = attrs.field(
        default=2.0, validator=_seconds(none="no heartbeats")
    )
    handle_sigterm: bool = attrs.field(default=True, validator=_flag)
    registry: bool = attrs.field(default=True, validator=_flag)
    state_dir: str | None = attrs.field(
        default=None, converter=_path_or_none, validator=_path_value(none="the default directory")
    )
    name: str = attrs.field(default="pool", validator=_name)
    python: str = attrs.field(
        factory=lambda: sys.executable, converter=_path, validator=_path_value()
    )
    runtime: str = attrs.field(default="python", validator=_runtime)
    worker_command: tuple[str, ...] | None = attrs.field(default=None, converter=_command)
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_env)
    cwd: str | None = attrs.field(
        default=None, converter=_path_or_none, validator=_path_value(none="the host's")
    )
    pythonpath: tuple[str, ...] = attrs.field(default=(), converter=_paths)
    inherit_path: bool = attrs.field(default=True, validator=_flag)
    worker_output: str = attrs.field(default="log", validator=_worker_output)
    max_host_tool_calls: int = attrs.field(default=64, validator=_whole(unit="calls"))
    max_reentry_depth: int = attrs.field(default=4, validator=_whole(minimum=0, unit="levels"))
    devices: str | tuple[str, ...] | None = attrs.field(default=None, converter=_devices)
    threads_per_worker: int | Literal["auto"] | None = attrs.field(default=1, validator=_threads)
    tracing: bool = attrs.field(default=False, validator=_flag)
    endpoints: tuple[str, ...] = attrs.field(default=(), converter=_remote.endpoints)
    token: bytes | None = attrs.field(default=None, converter=_remote.token, repr=False)
    tls: TLSConfig | None = attrs.field(default=None, validator=_remote.tls)
    launcher: WorkerLauncher | None = attrs.field(default=None, validator=_remote.launcher)

    def __attrs_post_init__(self) -> None:
        if self.tools and self.runtime != "python":
            raise ValueError(
                f"tools={list(self.tools)!r} are Python functions, served by Python workers "
                f"only; this pool's runtime is {self.runtime!r}: serve them from a pool of "
                "their own (runtime='python'), or write them as tools of the adapter"
            )
        if self.profile == "thread" and self.adapter is None:
            raise ValueError(
                "profile='thread' runs tools in threads of each worker at once, which an "
                "adapter must declare safe (thread_safe = True) and tools alone cannot: pass "
                "an adapter that declares it (its functions in tools=[...] then run under "
                "it), or use profile='process'"
            )
        self._check_endpoints()
        self._check_launcher()
        if self.heartbeat_timeout is not None and self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError(
                f"heartbeat_timeout={self.heartbeat_timeout!r} must exceed "
                f"heartbeat_interval={self.heartbeat_interval!r} (or be None: no heartbeats)"
            )

    def _check_endpoints(self) -> None:
        if not self.endpoints:
            if self.token is not None or self.tls is not None:
                raise ValueError(
                    "token and tls are for workers on other hosts: give endpoints=[...] too, "
                    "or leave them out for workers this pool starts"
                )
            return
        if self.token is None:
            raise ValueError(
                "endpoints need token=...: the secret in the workers' --token-file "
                "(they refuse hosts that cannot prove it)"
            )
        if self.size != len(self.endpoints):
            raise ValueError(
                f"size={self.size} but endpoints lists {len(self.endpoints)} workers: "
                "leave size out (a pool of endpoints has one worker per endpoint)"
            )

    def _check_launcher(self) -> None:
        if self.launcher is None:
            return
        if self.endpoints:
            raise ValueError(
                "give either endpoints=[...] (workers started elsewhere) or launcher=... "
                "(workers a launcher starts), not both"
            )
        if self.devices is not None:
            raise ValueError(
                "devices pins this machine's devices; workers a launcher starts run elsewhere: "
                "ask the launcher for them instead (RayLauncher(num_gpus=...))"
            )
        if self.runtime != "python" or self.worker_command is not None:
            raise ValueError(
                "a launcher starts Python workers (python -m snakepit_trio.worker on its "
                "nodes): leave runtime and worker_command out"
            )

    @classmethod
    def build(
        cls, adapter: str | None, config: PoolConfig | None, options: Mapping[str, Any]
    ) -> PoolConfig:
        """Merge ``open_pool``'s arguments into one configuration.

        Args:
            adapter: ``"package.module:AdapterClass"``, or None to keep ``config``'s (or,
                without ``config``, to serve the ``tools`` option alone).
            config: a configuration to start from, or None to start from the defaults.
            options: PoolConfig fields by name; they override ``config``'s. A None value
                means "the default" for fields that cannot be None.

        Returns:
            The new, validated configuration.

        Raises:
            TypeError: an unknown option name, neither ``adapter``, ``tools`` nor
                ``config``, or a value of the wrong type.
            ValueError: a value out of its range (the message names the field).
        """
        known = {f.name for f in attrs.fields(cls)} - {"adapter"}
        unknown = sorted(set(options) - known)
        if unknown:
            named = ", ".join(f"{name!r}{checks.did_you_mean(name, known)}" for name in unknown)
            raise TypeError(
                f"unknown pool option {named}; valid options: {', '.join(sorted(known))}"
            )
        if config is not None and not isinstance(config, PoolConfig):
            raise TypeError(
                f"config must be a PoolConfig; got {checks.shown(config)} "
                f"({checks.a_type(config)}); pass options as keywords: "
                "open_pool(adapter, size=..., timeout=...)"
            )
        fields = {k: v for k, v in options.items() if v is not None or k in _NULLABLE}
        if fields.get("endpoints") and "size" not in fields:
            fields["size"] = len(fields["endpoints"])  # one worker per endpoint
        if config is not None:
            if adapter is not None:
                fields["adapter"] = adapter
            return attrs.evolve(config, **fields)
        return cls(adapter=adapter, **fields)


class PoolOptions(TypedDict, total=False):
    """The keyword options of ``open_pool``: every PoolConfig field but ``adapter`` and ``size``.

    Written out for type checkers (PEP 692: ``**options: Unpack[PoolOptions]``), so use it to
    type a function that passes options through. ``PoolConfig`` says what each one means;
    ``tests/test_exports.py`` checks that the two list the same fields with the same types.
    """

    tools: Sequence[str | Callable[..., Any]]  # the field converts it to a tuple of str
    worker_capacity: int
    profile: str
    max_queue: int | None
    queue_timeout: float | None
    timeout: float | None
    startup_timeout: float
    startup_batch_size: int
    drain_timeout: float
    shutdown_grace: float
    max_payload_bytes: int
    shm_threshold: int | None
    transport: str
    start_method: str
    prefetch: int
    prefetch_budget: float
    max_requests: int | None
    max_memory_mb: float | None
    max_age: float | None
    max_retries: int
    kill_on_cancel: bool
    cancel_grace: float
    max_sessions: int | None
    session_ttl: float | None
    restart: RestartPolicy
    crash_threshold: int | None
    crash_window: float
    probe_after: float
    heartbeat_interval: float
    heartbeat_timeout: float | None
    handle_sigterm: bool
    registry: bool
    state_dir: str | None
    name: str
    python: str
    runtime: str
    worker_command: Sequence[str] | None  # the field converts it to a tuple
    env: Mapping[str, str]
    cwd: str | None
    pythonpath: Sequence[str]  # the field converts it to a tuple
    inherit_path: bool
    worker_output: str
    max_host_tool_calls: int
    max_reentry_depth: int
    devices: str | Sequence[str | Device] | None  # the field normalizes it
    threads_per_worker: int | Literal["auto"] | None
    tracing: bool
    endpoints: Sequence[str]  # the field converts it to a tuple
    token: str | bytes | None  # the field converts it to bytes
    tls: TLSConfig | None
    launcher: WorkerLauncher | None


_NULLABLE = {
    "launcher",
    "token",
    "tls",
    "devices",
    "threads_per_worker",
    "shm_threshold",
    "state_dir",
    "crash_threshold",
    "heartbeat_timeout",
    "max_queue",
    "queue_timeout",
    "timeout",
    "cwd",
    "max_sessions",
    "session_ttl",
    "max_requests",
    "max_memory_mb",
    "max_age",
}
