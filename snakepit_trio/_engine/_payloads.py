"""The host's shared-memory ledger: segments of our arguments, and worker segments we unmap.

How this works (the protocol is in _shared/_segments.py): large argument buffers go into
segments the host makes (``outbound``); a worker says with UNMAPPED_ARGS when it holds no
view of them (``returned``), or dies (``gone``). Results and chunks may arrive as views of
segments a worker made; when the last view dies here, in any thread, ``unmapped_here``
queues the name, and one UNMAPPED_RESULTS frame per worker goes out from the Trio thread
(``flush``), before the next CALL to that worker, since the worker may reuse the segment.

Workers over TCP map our segments only if their handshake proved it (``Worker.shares_memory``):
arguments go to segments while some worker of the pool does (``sharing``), and a payload
made so is re-encoded inline (``inline``) before it goes to a worker that does not.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import trio

from .._errors import PayloadTooLarge, SerializationError
from .._shared import _frames as w
from .._shared import _shm
from .._shared._codec import Outbound, Unmapped, decode, encode, segment_names
from .._shared._segments import SegmentCache, maker_of
from .._transport._base import Channel

log = logging.getLogger("snakepit_trio")


class Payloads:
    def __init__(
        self,
        token: str,
        threshold: int | None,
        channel_of: Callable[[str], Channel | None],
        sharing: Callable[[], bool] = lambda: True,
    ) -> None:
        """``sharing``: whether some worker maps our segments now (else arguments are
        inline: a pool of workers on other hosts makes no segment for nothing)."""
        self._sharing = sharing
        shm_on = threshold is not None and _shm.available()
        self.segments = SegmentCache(_shm.prefix(token, "host")) if shm_on else None
        self._threshold = threshold or 0
        self._prefix = _shm.prefix(token)
        self._channel_of = channel_of
        self._unmapped: list[str] = []  # worker segments no longer mapped here
        # An RLock: a view may die, and this run, in the middle of a flush.
        self._lock = threading.RLock()
        self._token = trio.lowlevel.current_trio_token()

    @property
    def unmapped(self) -> Unmapped | None:
        """What a decoded result reports its dying views to (None without shared memory)."""
        return None if self.segments is None else self.unmapped_here

    @property
    def pending(self) -> bool:
        return bool(self._unmapped)

    def outbound(self) -> Outbound | None:
        """A ledger for one call's arguments (None without shared memory)."""
        if self.segments is None or not self._sharing():
            return None
        return Outbound(self.segments, self._threshold)

    @staticmethod
    def inline(payload: bytes, what: str, limit: int) -> bytes:
        """``payload`` with what it holds in our segments copied in, for a worker that does
        not map them (over TCP, from another host); ``payload`` itself if that fails (the
        worker then fails the call with a serialization error, as for any unmappable one)."""
        try:
            return encode(decode(payload, what=what), what=what, limit=limit)
        except (SerializationError, PayloadTooLarge) as exc:
            log.warning("%s cannot go inline (%s); sent as it is", what, exc)
            return payload

    def unmapped_here(self, name: str) -> None:
        """No view of this worker-made segment is left here (any thread, any moment)."""
        with self._lock:
            self._unmapped.append(name)
            first = len(self._unmapped) == 1
        if first:
            with contextlib.suppress(trio.RunFinishedError):  # after the run: nobody to tell
                self._token.run_sync_soon(self.flush)

    def flush(self) -> None:
        """Tell each worker which of its segments are no longer mapped here."""
        with self._lock:
            names, self._unmapped = self._unmapped, []
        by_maker: dict[str, list[str]] = {}
        for name in names:
            maker = maker_of(name, self._prefix)
            if maker is not None:
                by_maker.setdefault(maker, []).append(name)
        for maker, made in by_maker.items():
            channel = self._channel_of(maker)
            if channel is not None:  # a dead worker maps nothing
                channel.send(w.unmapped_results(made))

    def drop(self, payload: bytes) -> None:
        """A result or chunk that will never be decoded: its maker may reuse its segments."""
        if self.segments is not None:
            for name in segment_names(payload):
                self.unmapped_here(name)

    def returned(self, names: list[str], worker_id: str) -> None:
        """UNMAPPED_ARGS: ``worker_id`` maps none of these segments of ours any more."""
        if self.segments is not None:
            self.segments.returned(names, worker_id)

    def gone(self, worker_id: str) -> None:
        """``worker_id`` died: its mappings of our arguments died with it."""
        if self.segments is not None:
            self.segments.gone(worker_id)
