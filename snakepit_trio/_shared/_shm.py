"""Shared-memory segments for large payloads (Linux ``/dev/shm``).

A buffer at or above the pool's ``shm_threshold`` does not travel through the socket: the
sender copies it once into a segment and the frame carries only the segment's name; the
receiver maps it read-only, so an array arrives as a view of the mapping, without a copy.

Its maker keeps a segment for reuse once no receiver maps it (``_segments.py``) and removes
what it cannot keep. What is left of a worker (also one that died) or of a pool is found by
name, since every name starts with ``snakepit-<pool id>-<maker>-``, and removed by the pool
(after a worker is reaped, when the pool closes) or by the registry sweep of a dead host's
pool. A mapping stays valid after its name is removed.

Rules, because ``/dev/shm`` is shared by every local user:

- Names never show the pool's token (it tags the pool's processes and keys its registry
  rows): the pool id is a one-way hash of it, so a dead pool's segments are still found from
  the token its registry row holds, but the token cannot be read back from a name.
- A segment is trusted only if it is a regular file of this user, readable by nobody else
  (``create`` makes them so). Anyone may create a file under a pool's prefix; the sweep
  leaves such entries alone (it could not remove them anyway) and says so in the log, and
  ``attach`` and ``rewrite`` refuse them.

Not multiprocessing.shared_memory: before Python 3.13 its resource tracker unlinks segments
it merely attached to, which would pull arguments away from under the host.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import mmap
import os
import secrets
import stat
import sys
from collections.abc import Callable

SHM_DIR = "/dev/shm"

log = logging.getLogger("snakepit_trio")


def available() -> bool:
    return sys.platform.startswith("linux") and os.path.isdir(SHM_DIR)


def pool_id(token: str) -> str:
    """What a pool's segment names carry instead of its token: a hash it cannot be read from."""
    return hashlib.blake2b(token.encode(), digest_size=8, person=b"snakepit-shm").hexdigest()


def prefix(token: str, maker: str | None = None) -> str:
    """Names of the segments one maker (the host, a worker id) of a pool creates; without
    ``maker``, of the whole pool."""
    pool = pool_id(token)
    return f"snakepit-{pool}-" if maker is None else f"snakepit-{pool}-{maker}-"


def _distrust(st: os.stat_result, owner: int | None = None, *, private: bool = True) -> str | None:
    """Why an entry is not a segment of ``owner`` (default: this user), or, if ``private``,
    not one as ``create`` makes them (None: it is one)."""
    uid = os.geteuid() if owner is None else owner
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_uid != uid:
        return f"owned by uid {st.st_uid}"
    if private and st.st_mode & 0o077:
        return f"open to other users (mode {stat.S_IMODE(st.st_mode):#o})"
    return None


Fill = Callable[[int], None]  # writes a segment's bytes through its descriptor, from offset 0


def write_all(fd: int, view: memoryview, offset: int = 0) -> None:
    """Write all of ``view`` at ``offset`` (pwrite, so the descriptor's position is unused)."""
    view, written = view.cast("B"), 0
    while written < view.nbytes:
        written += os.pwrite(fd, view[written:], offset + written)


def create(name_prefix: str, data: memoryview) -> str:
    """A new segment holding a copy of ``data``; returns its name."""
    view = data.cast("B")
    return create_with(name_prefix, view.nbytes, lambda fd: write_all(fd, view))


def create_with(name_prefix: str, size: int, fill: Fill) -> str:
    """A new segment of ``size`` bytes, which ``fill(fd)`` writes; returns its name.

    The segment is removed if ``fill`` raises.
    """
    name = name_prefix + secrets.token_hex(8)
    fd = os.open(os.path.join(SHM_DIR, name), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        # Pages allocated in one call, then filled by write(): measured 4.2 ms for 8 MiB,
        # against 5.3 ms for write() alone and far more for faulting them in through a
        # fresh mapping (which also zeroes each page before it is written).
        if size:
            os.posix_fallocate(fd, 0, size)
        fill(fd)
    except BaseException:
        unlink(name)
        raise
    finally:
        os.close(fd)
    return name


def rewrite(name: str, data: memoryview) -> bool:
    """Overwrite the start of an existing segment with ``data``; False if it is gone (or
    what has its name now is not ours: never written to)."""
    return rewrite_with(name, lambda fd: write_all(fd, data))


def rewrite_with(name: str, fill: Fill) -> bool:
    """Overwrite the start of an existing segment with what ``fill(fd)`` writes; False if it
    is gone (or what has its name now is not ours: never written to)."""
    try:
        fd = os.open(os.path.join(SHM_DIR, name), os.O_RDWR | os.O_NOFOLLOW)
    except (FileNotFoundError, PermissionError):
        return False
    except OSError as exc:
        if exc.errno != errno.ELOOP:  # ELOOP: a symbolic link took its name
            raise
        return False
    try:
        if _distrust(os.fstat(fd)) is not None:
            return False
        fill(fd)
    finally:
        os.close(fd)
    return True


def _open_segment(name: str) -> int:
    """A read-only descriptor of the segment ``name``, checked as the module's rules say."""
    if "/" in name or not name.startswith("snakepit-"):
        raise ValueError(f"not a snakepit segment name: {name!r}")
    fd = os.open(os.path.join(SHM_DIR, name), os.O_RDONLY | os.O_NOFOLLOW)
    try:
        why = _distrust(os.fstat(fd))
        if why is not None:
            raise PermissionError(f"shared-memory entry {name!r} is not this user's ({why})")
    except BaseException:
        os.close(fd)
        raise
    return fd


def attach(name: str, size: int) -> mmap.mmap:
    """Map a segment read-only (the mapping outlives the name).

    Raises:
        ValueError: ``name`` is not a segment name.
        PermissionError: the entry is not a segment this user made (see the module's rules).
        OSError: it cannot be opened or mapped (FileNotFoundError: it is gone).
    """
    fd = _open_segment(name)
    try:
        return mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)


_MAX_READ = 0x7FFFF000  # the most one read() returns on Linux


def read(name: str, size: int) -> bytes:
    """A copy of a segment's first ``size`` bytes.

    Read, not mapped: the kernel copies once from the segment's pages, where a fresh
    mapping would take a page fault per page before the copy.

    Raises:
        ValueError: ``name`` is not a segment name, or the segment is shorter than ``size``.
        PermissionError: the entry is not a segment this user made (see the module's rules).
        OSError: it cannot be opened or read (FileNotFoundError: it is gone).
    """
    fd = _open_segment(name)
    try:
        if size <= _MAX_READ:
            data = os.pread(fd, size, 0)
        else:
            parts, done = [], 0
            while done < size:
                part = os.pread(fd, min(size - done, _MAX_READ), done)
                if not part:
                    break
                parts.append(part)
                done += len(part)
            data = b"".join(parts)
    finally:
        os.close(fd)
    if len(data) != size:
        raise ValueError(f"segment {name!r} holds {len(data)} bytes, not {size}")
    return data


def unlink(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(SHM_DIR, name))


def sweep(name_prefix: str, *, owner: int | None = None) -> int:
    """Remove every segment whose name starts with ``name_prefix``; returns how many.

    Entries that are not regular files of ``owner`` (default: this process's user) are left
    alone, and logged as a warning: someone else made them under this prefix. (Removing a
    file of ours is safe whatever its mode; only its contents would not be trusted.)
    """
    if not available():
        return 0
    removed = 0
    for name in os.listdir(SHM_DIR):
        if not name.startswith(name_prefix):
            continue
        path = os.path.join(SHM_DIR, name)
        try:
            why = _distrust(os.lstat(path), owner, private=False)  # ours: safe to remove
            if why is None:
                os.unlink(path)
                removed += 1
                continue
        except FileNotFoundError:
            continue
        except OSError as exc:  # one entry must not stop the sweep of the others
            why = repr(exc)
        log.warning(
            "left %s in %s alone: it is named like this pool's shared memory, but %s",
            name,
            SHM_DIR,
            why,
        )
    return removed
