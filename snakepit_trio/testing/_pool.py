"""open_fake_pool: a Pool whose workers run in memory."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Unpack

import trio

from .._config import PoolConfig, PoolOptions
from .._lifecycle import run_engine
from .._pool import Pool
from ..worker._adapter import Adapter, AdapterLoadError, load_adapter
from ..worker._functions import load_functions
from ._launcher import MemoryLauncher


@asynccontextmanager
async def open_fake_pool(
    adapter: type[Adapter] | str | None = None,
    *,
    size: int = 2,
    **options: Unpack[PoolOptions],
) -> AsyncIterator[Pool]:
    """A pool like ``open_pool``'s whose workers run in this thread, for tests.

    The adapter's code runs as in a worker process (on an asyncio loop, with the worker
    runtime), with these differences: sync tools and sync generators run on that loop
    instead of in threads (so a tool that blocks, blocks the test); large buffers never use
    shared memory; ``max_memory_mb`` sees the host's memory; no SIGTERM handling; host tools
    (``pool.register_host_tool``) serve async tools (``await ctx.acall_host_tool``), while a
    sync tool's blocking ``ctx.call_host_tool`` raises RuntimeError (it would block the loop
    that runs the host tool). Works under
    ``trio.testing.MockClock(autojump_threshold=0)``: timeouts, heartbeats, backoff, ttl and
    ``asyncio.sleep`` in tools take virtual time.

    Args:
        adapter: the Adapter subclass, or ``"package.module:ClassName"``; None with
            ``tools=[...]`` serves those functions alone.
        size: number of workers.
        **options: any ``open_pool`` option (``tools``, ``timeout``, ``max_queue``,
            ``worker_capacity``, ``heartbeat_timeout``, ``max_requests``, ...); options
            about processes
            (``python``, ``env``, ``cwd``, ``start_method``, ``transport``) are accepted and
            have no effect.

    Returns:
        An async context manager yielding the ``Pool``; leaving it drains and stops it.

    Raises:
        WorkerStartError: the adapter's ``initialize`` failed (its traceback is in the
            message), or it did not finish within ``startup_timeout``.
        TypeError, ValueError: an unknown option, a bad value, an adapter that is not an
            Adapter subclass, neither an adapter nor tools, or a tools entry that cannot be
            loaded (ValueError, with the message a worker would give).
    """
    name: str | None
    if adapter is None:
        adapter_cls, name = Adapter, None
    elif isinstance(adapter, str):
        try:
            adapter_cls = load_adapter(adapter)
        except AdapterLoadError as exc:
            raise ValueError(str(exc)) from exc
        name = adapter
    elif isinstance(adapter, type) and issubclass(adapter, Adapter):
        adapter_cls = adapter
        name = f"{adapter.__module__}:{adapter.__qualname__}"
    else:
        raise TypeError(f"adapter must be an Adapter subclass or 'module:Class', got {adapter!r}")
    fixed = {"name": "fake", **options, "size": size, "shm_threshold": None}
    fixed["handle_sigterm"] = False
    cfg = PoolConfig.build(name, None, fixed)
    try:
        functions = load_functions(cfg.tools)
    except AdapterLoadError as exc:
        raise ValueError(str(exc)) from exc

    def launcher(nursery: trio.Nursery) -> MemoryLauncher:
        return MemoryLauncher(adapter_cls, cfg, functions)

    async with run_engine(cfg, launcher, secrets.token_hex(8)) as engine:
        yield Pool._create(engine)
