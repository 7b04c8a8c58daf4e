"""In a worker: where the pool placed it (``placement()``), and making a fork match it.

A fresh worker is started with its placement in its environment. A worker forked from the
template applies it first (``settle``): its environment, and, for BLAS and OpenMP libraries
the template already loaded with one thread, the thread count that environment asks for
(through threadpoolctl, which changes a loaded library's pool; a variable set after the
library loaded would do nothing).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import attrs

from .._shared._placement import DEVICE, THREAD_VARS, THREADS, apply, library_threads

log = logging.getLogger("snakepit_trio.worker")


@attrs.frozen
class Placement:
    """Where this worker runs, as its pool placed it (``open_pool(devices=...,
    threads_per_worker=...)``).

    Attributes:
        device: ``"cuda:GPU-…"`` or ``"rocm:GPU-…"``: the device this worker is pinned to,
            or None (not pinned). Its mask (``CUDA_VISIBLE_DEVICES``, or
            ``ROCR_VISIBLE_DEVICES``) holds that device alone, so inside the worker it is
            device 0 (``"cuda:0"`` in torch, on ROCm builds too).
        kind: ``"cuda"``, ``"rocm"`` or None.
        uuid: the device's uuid, or None.
        threads: the thread budget the pool gave BLAS and OpenMP here, or None (the pool
            left the thread variables alone). A variable the user set keeps their value.
    """

    device: str | None
    kind: str | None
    uuid: str | None
    threads: int | None


def placement() -> Placement:
    """Where the pool placed this worker: its device and its thread budget.

    Readable from the start (the adapter module, ``__init__``, ``initialize()``, tools), as
    are the variables behind it: ``SNAKEPIT_TRIO_DEVICE``, ``SNAKEPIT_TRIO_THREADS``,
    ``CUDA_VISIBLE_DEVICES``. In the template process (where a forked worker's module
    is imported) there is no placement yet: read it in ``__init__`` or later.

    Returns:
        A ``Placement``; every field None outside a pool's worker.

    Raises:
        Nothing: a malformed thread budget reads as None.
    """
    device = os.environ.get(DEVICE) or None
    kind, _, uuid = (device or "").partition(":")
    try:
        threads: int | None = int(os.environ.get(THREADS, ""))
    except ValueError:
        threads = None
    return Placement(device=device, kind=kind or None, uuid=uuid or None, threads=threads)


def settle(overrides: Mapping[str, str | None]) -> None:
    """In a forked worker, before anything of the adapter runs: take its placement."""
    before = {var: os.environ.get(var) for var in THREAD_VARS}
    apply(os.environ, overrides)
    if any(os.environ.get(var) != value for var, value in before.items()):
        limit_loaded_libraries()


def preload() -> None:
    """In the template: import what ``settle`` needs, so forks do not pay for it."""
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        pass


def limit_loaded_libraries() -> None:
    """Give each loaded BLAS and OpenMP library the thread count this environment asks of
    it (a fresh process would have read it when it loaded the library)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        log.warning(
            "threadpoolctl is not installed: BLAS/OpenMP libraries the template process "
            "loaded keep one thread in this forked worker (install threadpoolctl, or use "
            'start_method="spawn")'
        )
        return
    for library in ThreadpoolController().lib_controllers:
        wanted = library_threads(library.internal_api, os.environ)
        if wanted is not None and wanted != library.num_threads:
            try:
                library.set_num_threads(wanted)
            except Exception as exc:  # a library's own failure: it keeps what it has
                log.warning("could not give %s %d threads: %r", library.filepath, wanted, exc)
