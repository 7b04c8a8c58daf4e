"""open_pool(): start the workers, hand out the pool, drain and stop everything on exit.

Around the engine's nursery (``run_engine``): the registry, the socket directory, the template
process, and the asyncio bridge thread when transport="grpc". Leaving the block closes the
pool (``_engine/_shutdown.py``: queued calls fail, running ones drain, sessions end, workers
stop), and whatever is raised comes out as one exception, never a group of ours.
"""

from __future__ import annotations

import math
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Unpack

import attrs
import trio

from . import _control as control
from ._config import PoolConfig, PoolOptions
from ._engine import _signals as signals
from ._engine._engine import Engine
from ._pool import Pool
from ._shared import _shm
from ._supervision import _runtimes as runtimes
from ._supervision._launcher import Launcher, ProcessLauncher
from ._supervision._placement import resolve as resolve_placement
from ._supervision._records import WorkerRecords
from ._supervision._spawn import worker_env
from ._supervision._template import open_template

__all__ = ["open_pool"]


def _is_cancellation(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[0] is not None
    return isinstance(exc, trio.Cancelled)


def _require_trio() -> None:
    """Refuse to start outside a Trio run, with a message saying so (not trio's own)."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        try:
            import sniffio

            running = f"this is {sniffio.current_async_library()}"
        except Exception:  # no async library it knows of
            running = "no Trio run is active"
        raise RuntimeError(
            f"snakepit_trio needs Trio: call open_pool from code run by trio.run(...) "
            f"({running}). Under asyncio, run the part that uses the pool with trio.run in a "
            "thread of its own (await asyncio.to_thread(trio.run, main)), or write it with "
            'anyio and run it with anyio.run(main, backend="trio")'
        ) from None


def _holds_interrupt(exc: BaseException | None) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(KeyboardInterrupt) is not None
    return isinstance(exc, KeyboardInterrupt)


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _without_cancellation(exc: BaseException | None) -> BaseException | None:
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1]
    return None if isinstance(exc, trio.Cancelled) else exc


def _outcome(
    body: BaseException | None,
    interrupt: KeyboardInterrupt | None,
    escaped: BaseException | None,
) -> BaseException | None:
    """The one exception to raise once our nursery is gone.

    ``body``: what the user's block raised (their own, raised as it was). ``interrupt``: a
    Ctrl-C that came while the pool closed. ``escaped``: what came out of our nursery (a
    background failure, a cancellation, or a Ctrl-C that Trio delivered while the nursery
    waited, which the nursery put in a group).

    A KeyboardInterrupt comes out as itself, so ``except KeyboardInterrupt:`` around
    ``trio.run`` works; whatever else failed is kept as its ``__context__``, never dropped.
    """
    if _holds_interrupt(body):
        return body  # the user's own Ctrl-C (or their own group holding it)
    if isinstance(escaped, KeyboardInterrupt):
        interrupt, escaped = interrupt or escaped, None
    elif isinstance(escaped, BaseExceptionGroup):
        found, rest = escaped.split(KeyboardInterrupt)
        if found is not None:
            leaf = _first_leaf(found)
            assert isinstance(leaf, KeyboardInterrupt)
            interrupt, escaped = interrupt or leaf, rest
    if interrupt is not None:
        context = body if body is not None else _without_cancellation(escaped)
        if context is not None:
            interrupt.__context__ = context
        return interrupt
    return escaped if escaped is not None else body


async def _stop_on_terminate(engine: Engine) -> None:
    await engine.terminate.wait()
    with trio.CancelScope(shield=True):
        interrupt = await engine.shut_down(drain=True)
    if interrupt is not None:  # Trio gives Ctrl-C to the main task; _outcome unwraps it
        raise interrupt


@asynccontextmanager
async def open_pool(
    adapter: str | None = None,
    *,
    size: int | None = None,
    config: PoolConfig | None = None,
    **options: Unpack[PoolOptions],
) -> AsyncIterator[Pool]:
    """Start a pool of worker processes; all of them are ready when this yields.

    ``open_pool(tools=["pkg.mod:score"])`` serves module-level functions without an
    adapter (``PoolConfig.tools``); with an adapter, they join its tools.
    ``open_pool(adapter, endpoints=["tcp://10.0.0.5:7100"], token=..., tls=TLSConfig(...))``
    connects to workers started elsewhere instead of starting processes (``PoolConfig``).

    Args:
        adapter: ``"package.module:AdapterClass"``, importable by the workers (may be left
            out when ``config`` names one, or when ``tools`` names functions to serve).
        size: number of workers (default: ``config``'s, else the number of CPUs).
        config: a PoolConfig to start from; keyword options override its fields.
        **options: any other PoolConfig field (``tools``, ``max_queue``, ``timeout``,
            ``worker_capacity``, ...; ``PoolOptions`` lists them with their types).

    Returns:
        An async context manager yielding the running ``Pool``.

    Raises:
        WorkerStartError: a worker could not import or initialize the adapter, or import
            a tools entry's function, or two tools have one name (the message's first line
            says which, then what to change, then the worker's stderr); or a worker did not
            become ready within ``startup_timeout``; or, with ``endpoints``, one that cannot
            be reached, fails TLS, or refuses the token (the message says which).
        TypeError: an unknown option, neither an adapter nor tools, or a value of the
            wrong type (a class in ``tools``, say).
        ValueError: a value out of its range (the message names the option), a tools entry
            that workers cannot import (a lambda, a nested function, one in ``__main__``:
            the message says where to move it), or ``devices`` naming a device this host
            may not use (its message says which it may); with ``endpoints``, one that is not
            ``tcp://HOST:PORT``, no ``token``, or a ``TLSConfig`` file that cannot be loaded.
        PermissionError: ``state_dir`` is not this user's, or other users may write to it
            (the message names it and the fix; ``registry=False`` runs without it).
        RuntimeError: not called under Trio (from asyncio, say).

    On exit, calls still queued get ``PoolClosed`` at once; calls a worker already has may
    finish for ``drain_timeout`` seconds (not when the block raised or was cancelled);
    open sessions end (their adapter's ``on_session_end`` runs); then every worker's
    process group gets SIGTERM and, after ``shutdown_grace``, SIGKILL. Ctrl-C while the
    pool closes stops waiting for running calls; the workers are still stopped, then the
    KeyboardInterrupt comes out of this block as itself.
    """
    _require_trio()
    cfg = PoolConfig.build(adapter, config, {"size": size, **options})
    if cfg.endpoints:
        async with _open_endpoints_pool(cfg) as pool:
            yield pool
        return
    if cfg.launcher is not None:
        async with _open_launched_pool(cfg) as pool:
            yield pool
        return
    program = runtimes.program(cfg)  # which program starts a worker, found now
    # Only Python workers map shared-memory segments, and only those that config.python
    # starts can be forked from the template instead.
    if not program.maps_segments:
        cfg = attrs.evolve(cfg, shm_threshold=None)
    if not program.forks:
        cfg = attrs.evolve(cfg, start_method="spawn")
    placement = await resolve_placement(cfg)  # devices and threads, checked before any start
    records = await WorkerRecords.open(cfg)  # also kills leftovers of dead hosts
    socket_dir = tempfile.mkdtemp(prefix="snakepit-")  # mode 0700: only we can connect
    error: BaseException | None = None
    escaped: BaseException | None = None
    try:
        try:
            async with (
                _open_bridge_if(cfg) as bridge,
                open_template(cfg, records, worker_env(cfg, {}, placement.template())) as template,
            ):

                def launcher(nursery: trio.Nursery) -> ProcessLauncher:
                    return ProcessLauncher(
                        cfg, records, template, socket_dir, bridge, nursery, placement, program
                    )

                try:
                    async with run_engine(cfg, launcher, records.token) as engine:
                        pool = Pool._create(engine)
                        await engine.nursery.start(control.serve_pool, pool, records, socket_dir)
                        yield pool
                except BaseException as exc:
                    if _is_cancellation(exc):
                        raise
                    error = exc  # raised below, outside the template's nursery: not in a group
        finally:
            shutil.rmtree(socket_dir, ignore_errors=True)
            await records.close()
    except BaseException as exc:
        escaped = exc  # a cancellation, or a Ctrl-C that the template's nursery wrapped
    error = _outcome(error, None, escaped)
    if error is not None:
        raise error


@asynccontextmanager
async def _open_endpoints_pool(cfg: PoolConfig) -> AsyncIterator[Pool]:
    """A pool of workers someone else started (``endpoints``): no registry, template or
    processes of ours; each slot connects to its endpoint (``_supervision/_endpoints.py``)."""
    from ._supervision._endpoints import EndpointLauncher
    from ._transport._lane import TcpTarget

    assert cfg.token is not None  # PoolConfig requires it with endpoints
    tls = cfg.tls.context() if cfg.tls is not None else None  # a bad file raises now
    hostname = cfg.tls.server_hostname if cfg.tls is not None else None
    targets = [TcpTarget(url, cfg.token, tls, hostname) for url in cfg.endpoints]
    cfg = attrs.evolve(cfg, transport="local")
    # Names this pool's shared memory, with workers on this host that take it (the
    # handshake decides, worker by worker: _shared/_samehost.py).
    token = secrets.token_hex(8)
    try:
        async with run_engine(
            cfg, lambda nursery: EndpointLauncher(cfg, targets, token), token
        ) as engine:
            yield Pool._create(engine)
    finally:
        if cfg.shm_threshold is not None:
            _shm.sweep(_shm.prefix(token))  # what a worker left, and our own


@asynccontextmanager
async def _open_launched_pool(cfg: PoolConfig) -> AsyncIterator[Pool]:
    """A pool whose launcher starts its workers elsewhere (a Ray cluster, say) and reaches
    them over TCP: no registry, template or processes of ours. The launcher's own resources
    (a Ray connection) outlive every worker of the pool."""
    launcher = cfg.launcher
    assert launcher is not None
    cfg = attrs.evolve(cfg, shm_threshold=None, transport="local")  # no memory is shared
    async with (
        launcher.open_launcher(cfg) as make_launcher,
        run_engine(cfg, make_launcher, secrets.token_hex(8)) as engine,
    ):
        yield Pool._create(engine)


@asynccontextmanager
async def _open_bridge_if(cfg: PoolConfig) -> AsyncIterator[object]:
    """The asyncio thread grpclib runs on, only for transport="grpc" (it imports grpclib)."""
    if cfg.transport != "grpc":
        yield None
        return
    from ._transport._bridge import open_bridge

    async with open_bridge(f"{cfg.name}-bridge") as bridge:
        yield bridge


def _tracing(cfg: PoolConfig) -> Callable[..., object] | None:
    """``tracing=True``: what installs it (telemetry/_otel.py), imported now.

    Raises:
        ImportError: OpenTelemetry is not installed (the message names the extra).
    """
    if not cfg.tracing:
        return None
    try:
        from .telemetry._otel import install
    except ImportError as exc:
        raise ImportError(
            f"tracing=True needs OpenTelemetry ({exc}); install it with "
            "pip install 'snakepit_trio[otel]'"
        ) from exc
    return install


@asynccontextmanager
async def run_engine(
    cfg: PoolConfig, launcher: Callable[[trio.Nursery], Launcher], token: str
) -> AsyncIterator[Engine]:
    """Start an engine's workers; drain and stop them when the block ends.

    The engine's nursery owns one supervisor per worker, the session reaper, the recycler
    and the SIGTERM watch. Shared by ``open_pool`` and ``snakepit_trio.testing``.
    """
    body_error: BaseException | None = None
    interrupt: KeyboardInterrupt | None = None
    escaped: BaseException | None = None
    install = _tracing(cfg)  # before the nursery: a missing extra raises as itself
    try:
        async with trio.open_nursery() as nursery:
            engine = Engine(cfg, launcher(nursery), nursery, token)
            if install is not None:
                pool = Pool._create(engine)
                install(engine.telemetry, pool.stats, engine.terminated.is_set)
            try:
                started: BaseException | None = None
                try:
                    await engine.start_workers()
                except BaseExceptionGroup as group:  # Ctrl-C while starting: as itself
                    started = _outcome(None, None, group)
                if started is not None:
                    raise started
                nursery.start_soon(engine.sessions.reap)
                nursery.start_soon(engine.recycler.maintain)
                nursery.start_soon(engine.watchdog.run)
                nursery.start_soon(_stop_on_terminate, engine)
                signals.track(engine)
                if cfg.handle_sigterm and signals.can_watch():
                    await nursery.start(signals.watch)
                yield engine
            except BaseException as exc:
                if _is_cancellation(exc):
                    raise  # our nursery's cancel scope, or an outer one, must see it
                # Re-raised below, outside the nursery, so the caller sees their own
                # exception (KeyboardInterrupt included) and not a group wrapping it.
                body_error = exc
            finally:
                cancelled = body_error is None and trio.current_effective_deadline() == -math.inf
                with trio.CancelScope(shield=True):
                    interrupt = await engine.shut_down(
                        drain=body_error is None and not cancelled,
                        interrupted=_holds_interrupt(body_error),
                    )
                # Only now: a SIGTERM while this pool drains must still find it (and wait).
                signals.untrack(engine)
                nursery.cancel_scope.cancel()
    except BaseException as exc:
        escaped = exc
    error = _outcome(body_error, interrupt, escaped)
    if error is not None:
        raise error
