"""Threads in workers: what a worker's description must say before its tools run in threads.

``worker_capacity`` > 1 runs that many calls of a worker at once; its sync tools (and sync
generators) then run in threads side by side, sharing the adapter. An adapter says that this
is safe with ``thread_safe = True``. ``profile="thread"`` (few processes, many threads)
requires that declaration: a worker that does not make it is refused as it starts, so
``open_pool`` raises WorkerStartError. Otherwise a capacity above 1 with such tools on an
adapter that does not declare it is allowed, with one warning per pool.
"""

from __future__ import annotations

from .._config import PoolConfig
from .._transport._describe import WorkerDescription


def refusal(config: PoolConfig, described: WorkerDescription) -> str | None:
    """Why a worker that described itself so may not serve this pool, or None."""
    if config.profile != "thread" or described.thread_safe:
        return None
    return (
        f"adapter {config.adapter!r} does not declare thread_safe = True, and "
        f"profile='thread' runs its tools in threads of each worker at once "
        f"(worker_capacity={config.worker_capacity}). Declare it on the class "
        "(thread_safe = True) once its tools are safe to run concurrently (shared state "
        "behind locks; @tool(exclusive=True) serialises one tool), or use profile='process'"
    )


def unsafe_threads(config: PoolConfig, described: WorkerDescription) -> str | None:
    """The warning for tools that will share threads without the adapter's word, or None."""
    if config.worker_capacity < 2 or described.thread_safe or not described.threaded:
        return None
    tools = ", ".join(sorted(described.threaded))
    if config.adapter is None:  # function tools alone: nothing can declare them safe
        return (
            f"pool {config.name!r}: worker_capacity={config.worker_capacity} runs up to "
            f"{config.worker_capacity} calls of each worker at once, and the sync function "
            f"tools {tools} then run in threads side by side. Make sure they are safe to run "
            "concurrently (@tool(exclusive=True) on a function serialises it), or use "
            "worker_capacity=1 (more workers instead)"
        )
    return (
        f"pool {config.name!r}: worker_capacity={config.worker_capacity} runs up to "
        f"{config.worker_capacity} calls of each worker at once, and the sync tools "
        f"{tools} of adapter {config.adapter!r} then run in "
        "threads side by side, but the adapter does not declare thread_safe = True. Declare "
        "it once they are safe to run concurrently, or use worker_capacity=1 (more workers "
        "instead); @tool(exclusive=True) serialises one tool"
    )
