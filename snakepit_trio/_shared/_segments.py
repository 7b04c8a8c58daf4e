"""Shared-memory segments one process made, reused once no receiver maps them any more.

Filling a fresh tmpfs segment costs the kernel a page allocation per 4 KiB (measured: 4.2 ms
for 8 MiB), rewriting one that exists costs a copy (1.7 ms). So a maker keeps the segments it
sent: each is *out* while the call that sent it runs or a receiver may still map it, then
*free*, ready for the next payload of about its size. A receiver says it holds no mapping of
a segment any more (its last view was garbage-collected, or it never decoded the frame) with
an ``UNMAPPED_*`` frame; a receiver that dies maps nothing. A segment is never rewritten while
any process may still see it.

Shared by the host and the worker runtime, so it imports neither trio nor asyncio. Thread-safe:
workers encode results in their tool threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import attrs

from . import _shm

MAX_FREE = 4  # segments kept for reuse per process
MAX_FREE_BYTES = 128 << 20  # and at most this much memory (tmpfs pages count as RAM)


@attrs.define
class _Loan:
    capacity: int
    holders: set[str] = attrs.Factory(set)  # receivers that may map it
    in_use: bool = True  # the payload's call (or encoding) is not over


class SegmentCache:
    def __init__(self, name_prefix: str) -> None:
        self.prefix = name_prefix
        self._lock = threading.Lock()
        self._free: dict[str, int] = {}  # name -> capacity, oldest first
        self._out: dict[str, _Loan] = {}
        self.reused = 0  # how many payloads went into a segment that existed already

    def put(self, data: memoryview) -> str:
        """A segment holding a copy of ``data``: a free one of about its size, or a new one."""
        view = data.cast("B")
        return self.put_with(view.nbytes, lambda fd: _shm.write_all(fd, view))

    def put_with(self, size: int, fill: _shm.Fill) -> str:
        """A segment holding the ``size`` bytes ``fill(fd)`` writes from its start: a free
        one of about that size, or a new one. If ``fill`` raises, a free segment stays free
        (nobody maps it) and a new one is removed."""
        with self._lock:
            fits = [
                (cap, name)
                for name, cap in self._free.items()
                if size <= cap <= max(2 * size, size + (1 << 20))
            ]
            name = min(fits)[1] if fits else None
            if name is not None:
                capacity = self._free.pop(name)
        # A free segment that is gone from under us (swept), or whose name now holds what
        # another user made (not ours to remove), is forgotten: a new one is made instead.
        if name is not None:
            try:
                rewritten = _shm.rewrite_with(name, fill)
            except BaseException:
                with self._lock:
                    self._free[name] = capacity
                raise
            if rewritten:
                with self._lock:
                    self._out[name] = _Loan(capacity)
                    self.reused += 1
                return name
        name = _shm.create_with(self.prefix, size, fill)
        with self._lock:
            self._out[name] = _Loan(size)
        return name

    def sent(self, names: Iterable[str], holder: str) -> None:
        """``holder`` got a frame naming these: it may map them until it says otherwise."""
        with self._lock:
            for name in names:
                loan = self._out.get(name)
                if loan is not None:
                    loan.holders.add(holder)

    def done(self, names: Iterable[str]) -> None:
        """The call (or the encoding) these were made for is over on this side."""
        with self._lock:
            for name in names:
                loan = self._out.get(name)
                if loan is not None:
                    loan.in_use = False
                    self._settle(name, loan)

    def returned(self, names: Iterable[object], holder: str) -> None:
        """``holder`` maps none of these any more (unknown names are ignored)."""
        with self._lock:
            for name in names:
                if isinstance(name, str) and (loan := self._out.get(name)) is not None:
                    loan.holders.discard(holder)
                    self._settle(name, loan)

    def gone(self, holder: str) -> None:
        """``holder`` died: its mappings died with it."""
        with self._lock:
            for name, loan in list(self._out.items()):
                if holder in loan.holders:
                    loan.holders.discard(holder)
                    self._settle(name, loan)

    def _settle(self, name: str, loan: _Loan) -> None:
        if loan.in_use or loan.holders:
            return
        del self._out[name]
        self._free[name] = loan.capacity
        while len(self._free) > MAX_FREE or sum(self._free.values()) > MAX_FREE_BYTES:
            oldest = next(iter(self._free))
            del self._free[oldest]
            _shm.unlink(oldest)

    def remove_all(self) -> None:
        """Unlink every segment this cache knows (their receiver is gone for good; a mapping
        outlives its name)."""
        with self._lock:
            names = [*self._free, *self._out]
            self._free.clear()
            self._out.clear()
        for name in names:
            _shm.unlink(name)

    def free_names(self) -> list[str]:
        with self._lock:
            return list(self._free)

    def out_names(self) -> list[str]:
        """Segments a call is using or a receiver may still map."""
        with self._lock:
            return list(self._out)


def maker_of(name: str, pool_prefix: str) -> str | None:
    """The maker part of a segment name of this pool (``<pool prefix><maker>-<hex>``)."""
    if not name.startswith(pool_prefix):
        return None
    maker, sep, _ = name[len(pool_prefix) :].rpartition("-")
    return maker if sep else None
