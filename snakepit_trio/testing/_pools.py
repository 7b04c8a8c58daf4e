"""open_fake_pools: several named pools whose workers run in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs

from .._config import PoolConfig
from .._pool import Pool
from .._pools import Pools, open_pools_with
from ._pool import open_fake_pool

_SEPARATE = ("adapter", "size")  # open_fake_pool's own parameters


@asynccontextmanager
async def open_fake_pools(pools: Mapping[str, PoolConfig]) -> AsyncIterator[Pools]:
    """``open_pools`` over pools like ``open_fake_pool``'s: workers run in this thread.

    Routing, names, statistics and closing are those of ``open_pools``; each pool is what
    ``open_fake_pool`` makes of its configuration (no SIGTERM handling, no processes).

    Args:
        pools: ``{name: PoolConfig}``, as for ``open_pools``.

    Returns:
        An async context manager yielding the ``Pools``.

    Raises:
        WorkerStartError, TypeError, ValueError: as ``open_pools`` and ``open_fake_pool``.
    """
    async with open_pools_with(pools, _open_fake, watch_sigterm=False) as handle:
        yield handle


def _open_fake(config: PoolConfig) -> AbstractAsyncContextManager[Pool]:
    options: dict[str, Any] = {
        f.name: getattr(config, f.name) for f in attrs.fields(PoolConfig) if f.name not in _SEPARATE
    }
    return open_fake_pool(config.adapter, size=config.size, **options)
