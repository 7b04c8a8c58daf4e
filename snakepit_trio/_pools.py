"""open_pools(): several named pools, started together, closed together, routed by tool.

How this works: ``open_pool``'s block must begin and end in one task (its nursery belongs to
that task), so each pool runs in a task of its own, all of them in one nursery that the
caller's block runs inside (a pool that fails in the background cancels the block, as a
single pool's does). The pools start concurrently; the first that cannot start stops the
others and its error is raised. Leaving the block tells every pool to close at once, so
they drain side by side: normally (calls running may finish), or, when the block raised or
was cancelled, without draining.

Rules:
- No registry: the ``Pools`` handle is the only way to reach the pools, and it lives as long
  as the block.
- One SIGTERM watch for all of them (``_engine/_signals.py``), started before the pools, so
  no pool starts one of its own: a SIGTERM drains every pool at once, then ends the process.
- Ctrl-C while the pools close hurries them all; it comes out of the block as itself.
- A pool is named by its key; its ``PoolConfig.name`` (worker ids, thread names, logs) is
  the key unless the configuration names it otherwise, and no two pools share a name.
- Tools are routed by name to the one pool that has them; none or several is an error
  raised before anything is sent.
"""

from __future__ import annotations

import math
from abc import ABCMeta
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import trio

from ._config import PoolConfig
from ._core import _checks as checks
from ._engine import _signals as signals
from ._errors import AmbiguousTool, UnknownTool
from ._lifecycle import _holds_interrupt, _is_cancellation, _outcome, _require_trio, open_pool
from ._pool import Pool
from ._progress import ProgressCallback
from ._public import NoPublicConstructor
from ._stats import PoolStats, WorkerInfo
from ._streaming import Stream
from ._tools import ToolSpec

__all__ = ["Pools", "open_pools"]

# What opens one pool from its configuration: open_pool, or snakepit_trio.testing's fake.
Opener = Callable[[PoolConfig], AbstractAsyncContextManager[Pool]]

_DEFAULT_NAME = attrs.fields(PoolConfig).name.default


class _HandleMeta(NoPublicConstructor, ABCMeta):
    """No public constructor, for a class that is also a ``Mapping``."""


class Pools(Mapping[str, Pool], metaclass=_HandleMeta):
    """The pools of one ``open_pools`` block, by name; get it from ``open_pools``.

    A read-only mapping of names to ``Pool`` (``pools["compute"]``, ``in``, ``len``,
    iteration in the order given), which also routes a call by its tool's name
    (``pools.execute("predict", ...)``) to the one pool that has that tool.
    """

    __slots__ = ("_pools", "_routes")

    def __init__(self, pools: dict[str, Pool]) -> None:
        self._pools = pools
        # Tool name -> the pools that have it. Each pool's tools are fixed once its first
        # worker described them, which was before open_pools handed this out.
        routes: dict[str, list[str]] = {}
        for name, pool in pools.items():
            for spec in pool.tools():
                routes.setdefault(spec.name, []).append(name)
        self._routes = routes

    # Identity, as for every handle (Mapping would compare contents).
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __getitem__(self, name: str) -> Pool:
        try:
            return self._pools[name]
        except KeyError:
            hint = checks.did_you_mean(name, self._pools) if isinstance(name, str) else ""
            listed = ", ".join(map(repr, self._pools))
            raise KeyError(f"no pool named {name!r}{hint}; the pools are {listed}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._pools)

    def __len__(self) -> int:
        return len(self._pools)

    # --- routing ---------------------------------------------------------------------------
    def route(self, tool: str) -> Pool:
        """The pool a call of ``tool`` goes to: the one pool that has a tool of that name.

        Args:
            tool: the tool's name.

        Returns:
            That pool.

        Raises:
            UnknownTool: no pool has it (the message lists each pool's tools).
            AmbiguousTool: more than one has it (the message names them); call it on the
                one you mean, ``pools[name].execute(...)``.
            TypeError: ``tool`` is not a str.
        """
        checks.text("tool", tool)
        found = self._routes.get(tool)
        if found is None:
            raise UnknownTool(tool, list(self._routes), pools=self._tool_names())
        if len(found) > 1:
            raise AmbiguousTool(tool, found, self._tool_names())
        return self._pools[found[0]]

    def _tool_names(self) -> dict[str, list[str]]:
        return {name: [t.name for t in pool.tools()] for name, pool in self._pools.items()}

    async def execute(
        self,
        tool: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
        on_progress: ProgressCallback | None = None,
        kill_on_cancel: bool | None = None,
    ) -> Any:
        """``Pool.execute`` on the pool that has ``tool`` (see ``route``).

        Args:
            tool, args, timeout, idempotent, on_progress, kill_on_cancel: as for
                ``Pool.execute``.

        Returns:
            The tool's return value.

        Raises:
            UnknownTool, AmbiguousTool: see ``route``; then the errors of ``Pool.execute``.
        """
        return await self.route(tool).execute(
            tool,
            args,
            timeout=timeout,
            idempotent=idempotent,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
        )

    def stream(
        self,
        tool: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        window: int = 16,
        on_progress: ProgressCallback | None = None,
        kill_on_cancel: bool | None = None,
    ) -> AbstractAsyncContextManager[Stream]:
        """``Pool.stream`` on the pool that has ``tool`` (see ``route``).

        Args:
            tool, args, timeout, idle_timeout, window, on_progress, kill_on_cancel: as for
                ``Pool.stream``.

        Returns:
            An async context manager yielding the ``Stream``.

        Raises:
            UnknownTool, AmbiguousTool: see ``route`` (at once, from this call); then the
                errors of ``Pool.stream``.
        """
        return self.route(tool).stream(
            tool,
            args,
            timeout=timeout,
            idle_timeout=idle_timeout,
            window=window,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
        )

    async def execute_stream(
        self,
        tool: str,
        args: dict[str, Any] | None,
        callback: Callable[[Any], object],
        *,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        window: int = 16,
        on_progress: ProgressCallback | None = None,
        kill_on_cancel: bool | None = None,
    ) -> None:
        """``Pool.execute_stream`` on the pool that has ``tool`` (see ``route``).

        Args:
            tool, args, callback, timeout, idle_timeout, window, on_progress,
                kill_on_cancel: as for ``Pool.execute_stream``.

        Returns:
            None, once the stream has ended.

        Raises:
            UnknownTool, AmbiguousTool: see ``route``; then the errors of
                ``Pool.execute_stream``.
        """
        await self.route(tool).execute_stream(
            tool,
            args,
            callback,
            timeout=timeout,
            idle_timeout=idle_timeout,
            window=window,
            on_progress=on_progress,
            kill_on_cancel=kill_on_cancel,
        )

    # --- what the pools hold ---------------------------------------------------------------
    def stats(self) -> dict[str, PoolStats]:
        """Each pool's ``stats()``, by name; one pool's health is its own.

        Returns:
            A ``PoolStats`` per pool, in ``open_pools`` order.

        Raises:
            Nothing; it reads counters.
        """
        return {name: pool.stats() for name, pool in self._pools.items()}

    def workers(self) -> dict[str, list[WorkerInfo]]:
        """Each pool's ``workers()``, by name.

        Returns:
            The ``WorkerInfo`` list of each pool, in ``open_pools`` order.

        Raises:
            Nothing; a worker that cannot be inspected is reported with ``rss=None``.
        """
        return {name: pool.workers() for name, pool in self._pools.items()}

    def tools(self) -> dict[str, list[ToolSpec]]:
        """Each pool's ``tools()``, by name.

        Returns:
            The ``ToolSpec`` list of each pool, in ``open_pools`` order.

        Raises:
            Nothing; the specs were read when the workers started.
        """
        return {name: pool.tools() for name, pool in self._pools.items()}

    def __repr__(self) -> str:
        return "<Pools " + ", ".join(f"{n!r}: {p!r}" for n, p in self._pools.items()) + ">"


def named_configs(pools: object) -> dict[str, PoolConfig]:
    """Check ``open_pools``'s argument; each pool's configuration with its name settled.

    Raises:
        TypeError: not a mapping of str names to PoolConfig.
        ValueError: no pool, an empty name, or two pools with one ``PoolConfig.name``.
    """
    example = "{'default': PoolConfig(adapter='package.module:Class', size=2)}"
    if isinstance(pools, PoolConfig) or not isinstance(pools, Mapping):
        raise TypeError(
            f"open_pools() takes a dict of pool names to PoolConfig, e.g. {example}; "
            f"got {checks.shown(pools)} ({checks.a_type(pools)})"
        )
    if not pools:
        raise ValueError(f"open_pools() needs at least one pool, e.g. {example}; got none")
    named: dict[str, PoolConfig] = {}
    for name, cfg in pools.items():
        checks.text("a pool's name", name, empty=False)
        if not isinstance(cfg, PoolConfig):
            raise TypeError(
                f"pool {name!r} must be a PoolConfig; got {checks.shown(cfg)} "
                f"({checks.a_type(cfg)}); build it with PoolConfig(adapter='package.module:"
                "Class', ...) or load the pools with load_pools('snakepit.toml')"
            )
        named[name] = attrs.evolve(cfg, name=name) if cfg.name == _DEFAULT_NAME else cfg
    owners: dict[str, list[str]] = {}
    for key, cfg in named.items():
        owners.setdefault(cfg.name, []).append(key)
    for pool_name, keys in owners.items():
        if len(keys) > 1:
            raise ValueError(
                f"pools {', '.join(map(repr, keys))} are all named {pool_name!r} "
                "(PoolConfig.name); pool names must differ: leave name out (a pool is then "
                "named by its key) or give each its own"
            )
    return named


@asynccontextmanager
async def open_pools(pools: Mapping[str, PoolConfig]) -> AsyncIterator[Pools]:
    """Start several pools at once; every worker of every pool is ready when this yields.

    Each pool is what ``open_pool(config=...)`` would start, with its own workers, queue,
    sessions, statistics and health: a crash storm in one makes only that one unhealthy.
    There is no registry: reach the pools through the ``Pools`` handle.

    Args:
        pools: ``{name: PoolConfig}`` (``load_pools`` reads one from TOML). A pool is named
            by its key; its ``PoolConfig.name`` (worker ids, logs) is the key too unless the
            configuration sets another, and no two pools may share a name.

    Returns:
        An async context manager yielding the ``Pools``.

    Raises:
        WorkerStartError: a worker of some pool could not start (the others are stopped).
        TypeError: ``pools`` is not a mapping of str names to PoolConfig.
        ValueError: no pool, an empty name, or two pools named alike.
        RuntimeError: not called under Trio.

    On exit every pool closes at once, each as ``open_pool``'s block would (queued calls
    get ``PoolClosed``, running ones may finish for its ``drain_timeout`` unless the block
    raised or was cancelled, sessions end, workers stop). SIGTERM is watched once for all
    of them (when any has ``handle_sigterm``): it drains every pool, then ends the process.
    """
    async with open_pools_with(pools, _open_one) as handle:
        yield handle


def _open_one(config: PoolConfig) -> AbstractAsyncContextManager[Pool]:
    return open_pool(config=config)


class _Abandoned(Exception):
    """Raised in a pool's block to close it as a block that raised closes a pool: without
    draining, its sessions ended and its workers stopped in order (a cancelled block would
    cancel its supervisors at once). Caught by the pool's task."""


@attrs.define(eq=False)
class _Runner:
    """One pool's task: it opens the pool, then holds it open until told to close."""

    config: PoolConfig
    pool: Pool | None = None
    close: trio.Event = attrs.Factory(trio.Event)
    drain: bool = True  # how to close once ``close`` is set
    done: trio.Event = attrs.Factory(trio.Event)
    began: bool = False  # False: its start was cancelled before its task ran at all

    async def run(
        self, opener: Opener, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self.began = True
        try:
            async with opener(self.config) as pool:
                self.pool = pool
                task_status.started()
                await self.close.wait()
                if not self.drain:
                    raise _Abandoned
        except _Abandoned:
            pass
        finally:
            self.done.set()

    def opened(self) -> Pool:
        assert self.pool is not None, "started, so open"
        return self.pool

    def hurry(self) -> None:
        if self.pool is not None:
            self.pool._engine.hurry("Ctrl-C")


@asynccontextmanager
async def open_pools_with(
    pools: Mapping[str, PoolConfig], opener: Opener, *, watch_sigterm: bool = True
) -> AsyncIterator[Pools]:
    """``open_pools`` with each pool opened by ``opener`` (``open_pool``, or the fake's)."""
    _require_trio()
    runners = {name: _Runner(cfg) for name, cfg in named_configs(pools).items()}
    body_error: BaseException | None = None
    interrupt: KeyboardInterrupt | None = None
    escaped: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                wanted = any(r.config.handle_sigterm for r in runners.values())
                if watch_sigterm and wanted and signals.can_watch():
                    # Before the pools start: the handler it installs tells each of them
                    # that SIGTERM is watched already (signals.can_watch), so none adds its own.
                    await nursery.start(signals.watch)
                await _start_all(nursery, list(runners.values()), opener)
                yield Pools._create({name: r.opened() for name, r in runners.items()})
            except BaseException as exc:
                if _is_cancellation(exc):
                    raise
                body_error = exc  # raised below, outside the nursery: not in a group
            finally:
                cancelled = body_error is None and trio.current_effective_deadline() == -math.inf
                interrupt = await _close_all(
                    list(runners.values()),
                    drain=body_error is None and not cancelled,
                    hurry=_holds_interrupt(body_error),
                )
                nursery.cancel_scope.cancel()  # the SIGTERM watch, if no SIGTERM came
    except BaseException as exc:
        escaped = exc
    error = _outcome(body_error, interrupt, escaped)
    if error is not None:
        raise error


async def _start_all(nursery: trio.Nursery, runners: list[_Runner], opener: Opener) -> None:
    """Start every pool concurrently; the first failure stops the others and is raised."""
    failures: list[BaseException] = []

    async def start(runner: _Runner, starters: trio.CancelScope) -> None:
        try:
            await nursery.start(runner.run, opener)
        except (Exception, KeyboardInterrupt) as exc:
            failures.append(exc)
            starters.cancel()

    async with trio.open_nursery() as starters:
        for runner in runners:
            starters.start_soon(start, runner, starters.cancel_scope)
    if failures:
        interrupts = [f for f in failures if isinstance(f, KeyboardInterrupt)]
        raise (interrupts or failures)[0]


async def _close_all(
    runners: list[_Runner], *, drain: bool, hurry: bool
) -> KeyboardInterrupt | None:
    """Close every pool at once and wait until all are closed (each closing is bounded).

    Returns the KeyboardInterrupt that came meanwhile (it hurried them all), if one did.
    """
    interrupt: KeyboardInterrupt | None = None
    for runner in runners:
        if hurry:
            runner.hurry()
        runner.drain = drain
        runner.close.set()
    with trio.CancelScope(shield=True):
        for runner in runners:
            while runner.began and not runner.done.is_set():
                try:
                    await runner.done.wait()
                except KeyboardInterrupt as exc:  # Trio's Ctrl-C reaches the main task
                    interrupt = interrupt or exc
                    for other in runners:
                        other.hurry()
    return interrupt
