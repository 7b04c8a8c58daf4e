"""``detect()`` and the answers built on it: the public functions of ``snakepit_trio.hardware``."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._model import Device, HardwareInfo
from ._probe import cpu as read_cpu
from ._probe import cuda as read_cuda
from ._probe import mps as read_mps
from ._probe import rocm as read_rocm
from ._select import capabilities as _capabilities
from ._select import identity as _identity
from ._select import select as _select

_cache: dict[Path, HardwareInfo] = {}
_lock = threading.Lock()

DEFAULT_PREFERENCES = ("cuda", "rocm", "mps", "cpu")


def detect(*, root: str | os.PathLike[str] = "/", refresh: bool = False) -> HardwareInfo:
    """What this machine has: the CPU and this process's share of it, and its accelerators.

    Sync and fairly cheap (files under ``/proc`` and ``/sys``, NVML: tens of milliseconds;
    ``nvidia-smi`` when NVML is not there: more), so from Trio call it through
    ``trio.to_thread.run_sync``. The result is kept for the process: later calls return it
    at once. Nothing here initialises a device or imports torch: NVML and sysfs describe
    devices without creating a context, so it is safe in a process that forks later.

    Args:
        root: where ``proc/`` and ``sys/`` are read from (a fake tree, in tests).
        refresh: detect again (free memory changes) instead of returning the kept result.

    Returns:
        A ``HardwareInfo``. A detector that could not answer says why in its ``notes``.

    Raises:
        Nothing: what cannot be read is left out, with a note.
    """
    where = Path(root)
    with _lock:
        if not refresh and where in _cache:
            return _cache[where]
    cuda, driver, source, notes = read_cuda()
    rocm, rocm_notes = read_rocm(where)
    notes += rocm_notes
    info = HardwareInfo(
        cpu=read_cpu(where),
        cuda=tuple(cuda),
        cuda_driver=driver,
        cuda_source=source,
        rocm=tuple(rocm),
        mps=read_mps(),
        notes=tuple(notes),
    )
    with _lock:
        _cache[where] = info
    return info


def capabilities(info: HardwareInfo | None = None) -> dict[str, bool]:
    """What this machine can run, as flags.

    Args:
        info: a ``detect()`` result (default: ``detect()``).

    Returns:
        ``{"cuda": ..., "rocm": ..., "mps": ..., "cpu": True}`` and one entry per notable
        CPU feature (``"avx2"``, ``"avx512f"``, ``"amx_tile"``, ``"asimd"``, ...), the same
        keys on every machine.

    Raises:
        Nothing.
    """
    return _capabilities(info or detect())


def select_with_fallback(
    preferences: Sequence[str] = DEFAULT_PREFERENCES,
    *,
    min_free_mb: float | None = None,
    info: HardwareInfo | None = None,
) -> Device:
    """The first kind of device in ``preferences`` that this process may use.

    For ``"cuda"`` and ``"rocm"``, only devices the masks in this process's environment
    let through count (``CUDA_VISIBLE_DEVICES``, ...), and of those the one with the most
    free memory is chosen. ``"mps"`` is Apple's GPU (likely, not certain: only a framework
    can tell); ``"cpu"`` is always there.

    Args:
        preferences: kinds in order of preference: ``"cuda"``, ``"rocm"``, ``"mps"``,
            ``"cpu"``.
        min_free_mb: skip devices with less free memory than this (devices whose free
            memory is unknown, as ROCm's, are not skipped). None: any.
        info: a ``detect()`` result (default: ``detect(refresh=True)`` when
            ``min_free_mb`` is given, since free memory changes, else ``detect()``).

    Returns:
        The chosen ``Device`` (``kind="cpu"`` for the CPU).

    Raises:
        LookupError: none of ``preferences`` is here (leave ``"cpu"`` last to never get it).
        ValueError: an unknown kind, or a bad ``min_free_mb``.
        TypeError: ``preferences`` is a str, not a list.
    """
    if info is None:
        info = detect(refresh=min_free_mb is not None)
    return _select(info, preferences, min_free_mb, os.environ)


def identity(info: HardwareInfo | None = None, *, instance: bool = False) -> dict[str, Any]:
    """What code built, compiled or tuned on this machine depends on: for lock files.

    Two machines with the same identity run the same kernels: platform, architecture, CPU
    model and notable features, the best accelerator kind, and per device its model and
    compute capability (and the CUDA driver's major version). Memory, counts of free
    anything and the order of keys do not change it; ``json.dumps(..., sort_keys=True)``
    of it is a stable key.

    Args:
        info: a ``detect()`` result (default: ``detect()``).
        instance: add each device's uuid, to tell this machine from an identical one.

    Returns:
        A dict of str, bool, list and dict values (JSON-ready).

    Raises:
        Nothing.
    """
    return _identity(info or detect(), instance=instance)
