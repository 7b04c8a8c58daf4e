"""Shared-memory segments for large payloads (Linux ``/dev/shm``).

A buffer at or above the pool's ``shm_threshold`` does not travel through the socket: the
sender copies it once into a segment and the frame carries only the segment's name; the
receiver maps it read-only, so an array arrives as a view of the mapping, without a copy.

Its maker keeps a segment for reuse once no receiver maps it (``_segments.py``) and removes
what it cannot keep. What is left of a worker (also one that died) or of a pool is found by
name, since every name starts with ``snakepit-<pool token>-<maker>-``, and removed by the pool
(after a worker is reaped, when the pool closes) or by the registry sweep of a dead host's
pool. A mapping stays valid after its name is removed.

Not multiprocessing.shared_memory: before Python 3.13 its resource tracker unlinks segments
it merely attached to, which would pull arguments away from under the host.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import sys

SHM_DIR = "/dev/shm"


def available() -> bool:
    return sys.platform.startswith("linux") and os.path.isdir(SHM_DIR)


def prefix(token: str, maker: str | None = None) -> str:
    """Names of the segments one maker (the host, a worker id) of a pool creates; without
    ``maker``, of the whole pool."""
    return f"snakepit-{token}-" if maker is None else f"snakepit-{token}-{maker}-"


def create(name_prefix: str, data: memoryview) -> str:
    """A new segment holding a copy of ``data``; returns its name."""
    name = name_prefix + secrets.token_hex(8)
    fd = os.open(os.path.join(SHM_DIR, name), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        # Pages allocated in one call, then filled by write(): measured 4.2 ms for 8 MiB,
        # against 5.3 ms for write() alone and far more for faulting them in through a
        # fresh mapping.
        view, written = data.cast("B"), 0
        if view.nbytes:
            os.posix_fallocate(fd, 0, view.nbytes)
        while written < view.nbytes:
            written += os.write(fd, view[written:])
    except BaseException:
        unlink(name)
        raise
    finally:
        os.close(fd)
    return name


def rewrite(name: str, data: memoryview) -> bool:
    """Overwrite the start of an existing segment with ``data``; False if it is gone."""
    try:
        fd = os.open(os.path.join(SHM_DIR, name), os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        view, written = data.cast("B"), 0
        while written < view.nbytes:
            written += os.pwrite(fd, view[written:], written)
    finally:
        os.close(fd)
    return True


def attach(name: str, size: int) -> mmap.mmap:
    """Map a segment read-only (the mapping outlives the name)."""
    if "/" in name or not name.startswith("snakepit-"):
        raise ValueError(f"not a snakepit segment name: {name!r}")
    fd = os.open(os.path.join(SHM_DIR, name), os.O_RDONLY)
    try:
        return mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)


def unlink(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(SHM_DIR, name))


def sweep(name_prefix: str) -> int:
    """Remove every segment whose name starts with ``name_prefix``; returns how many."""
    if not available():
        return 0
    removed = 0
    for name in os.listdir(SHM_DIR):
        if name.startswith(name_prefix):
            unlink(name)
            removed += 1
    return removed
