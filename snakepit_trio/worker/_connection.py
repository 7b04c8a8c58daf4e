"""One connection to the host: frames in, calls started, frames out (any carrier).

``Connection`` is shared by the carriers: the local lane (``_lane.py``), gRPC's Connect
(``_service.py``) and ``snakepit_trio.testing``'s in-memory channel. Each carrier feeds it
decoded batches (``handle``) and sends what ``take_batches`` gives it when ``wake`` is set.

Chunks of a stream that pile up while the carrier is busy go to a host that reads CHUNKS
(capability "chunks") in one frame: each CHUNK emitted right after a CHUNKS of the same call,
with nothing in between, joins it (up to MAX_CHUNKS chunks and MAX_BATCH_BYTES bytes). The
host then checks and hands over a burst of chunks at once instead of one frame per chunk,
which was most of its cost per chunk. Order is kept: only the last frame in the outbox grows.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from typing import Any

import msgpack
import psutil

from .._shared import _frames as w
from .._shared._arrow import available as arrow_available
from .._shared._codec import encode
from ._events import Route
from ._host_calls import HostCalls
from ._runtime import Frame, Memory, RunningCall, Runtime

log = logging.getLogger("snakepit_trio.worker")


class Connection:
    """One Connect stream: the calls started through it and the frames waiting to go out.

    Frames produced while the stream is busy sending pile up in the outbox and leave
    together in the next message, so results finished in one loop iteration share a batch.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.calls: dict[int, RunningCall] = {}
        self.outbox: list[Frame] = []
        self._coalesce = False  # the host reads CHUNKS (it named "chunks" in its HELLO)
        self._run: Frame | None = None  # the CHUNKS frame last in the outbox, if it is last
        self._room = 0  # chunks it may still take
        self._room_bytes = 0  # bytes it may still take
        self.wake = asyncio.Event()
        self.reading_done = False
        # What the host serves, from its HELLO (the first frame on either carrier); until
        # then nothing beyond the base frames is sent to it.
        self.host_capabilities: frozenset[str] = frozenset()
        self.host = HostCalls(
            asyncio.get_running_loop(), self.emit, self._is_live, runtime.max_payload
        )
        self.events: Route | None = None  # how EVENT frames reach a host that takes them
        # Where this host's large results go: the worker's own segments, those a TCP host on
        # this machine accepted in the handshake (worker/_lane.py), or None (inline).
        self.memory: Memory | None = runtime.memory

    def emit(self, frame: Frame) -> None:
        """Queue ``frame`` for the host. A CHUNK may join the CHUNKS queued just before; a
        CHUNKS (a sync generator's burst) is split into CHUNK frames for a host that did
        not name "chunks", and joined or cut to the limits for one that did."""
        kind = frame[0]
        if kind == w.CHUNK and self._coalesce:
            self._add_chunks(frame[1], [frame[2]])
        elif kind == w.CHUNKS:
            if self._coalesce:
                self._add_chunks(frame[1], frame[2])
            else:
                self._run = None
                self.outbox.extend([w.CHUNK, frame[1], payload] for payload in frame[2])
        else:
            self._run = None  # what follows this frame may not join what came before it
            self.outbox.append(frame)
        self.wake.set()

    def _add_chunks(self, call_id: int, payloads: list[bytes]) -> None:
        """Each payload joins the CHUNKS frame last in the outbox while it is of this call
        and has room; else it begins a new one."""
        run, room, room_bytes = self._run, self._room, self._room_bytes
        if run is not None and run[1] != call_id:
            run = None
        outbox = self.outbox
        for payload in payloads:
            size = len(payload)
            if run is None or not room or size > room_bytes:
                run = w.chunks(call_id, [payload])
                outbox.append(run)
                room, room_bytes = w.MAX_CHUNKS - 1, w.MAX_BATCH_BYTES - size
            else:
                run[2].append(payload)
                room -= 1
                room_bytes -= size
        self._run, self._room, self._room_bytes = run, room, room_bytes

    def _is_live(self, call_id: int) -> bool:
        call = self.calls.get(call_id)
        return call is not None and not call.cancel_requested

    def _call_done(self, call_id: int) -> None:
        self.calls.pop(call_id, None)
        self.host.call_cancelled(call_id)  # host calls its own threads left open
        if self.reading_done and not self.calls:
            self.wake.set()

    def handle(self, frames: Any) -> None:
        if not isinstance(frames, list):
            log.warning("ignoring a malformed batch (not a list of frames)")
            return
        for frame in frames:
            try:
                parsed = w.parse_from_host(frame)
            except w.ProtocolViolation as exc:
                # The host is the one that acts on violations (it replaces a worker that
                # sends one). A worker answers what it can and serves on: a CALL or BATCH it
                # cannot read gets an ERROR when its id is readable, so its caller is not
                # left waiting.
                log.warning("ignoring a malformed frame: %s", exc)
                kind = frame[0] if type(frame) is list and len(frame) > 1 else None
                if type(kind) is int and kind in w.CALL_KINDS:
                    call_id = frame[1]
                    if type(call_id) is int and call_id >= 0 and call_id not in self.calls:
                        self.emit(w.error(call_id, "ProtocolError", str(exc), w.KIND_PROTOCOL))
                elif _host_answer_id(frame) is not None:  # its tool would wait forever
                    self.host.fail(frame[1], f"the host's answer did not parse: {exc}")
                continue
            self._handle_one(parsed)

    def _start(self, frame: w.Call | w.Batch) -> None:
        """A CALL or a BATCH: one call id, started by the runtime (or answered with ERROR)."""
        if frame.id in self.calls:
            self.emit(w.error(frame.id, "ProtocolError", "duplicate call id", w.KIND_PROTOCOL))
            return
        borrowed = bool(frame.meta and frame.meta.get("borrow") is True)
        start = (frame.id, frame.tool, frame.args, frame.session_id, frame.deadline)
        ends = (self.emit, self._call_done, self.host)
        options: dict[str, Any] = {
            "borrowed": borrowed,
            "meta": frame.meta,
            "events": self.events,
            "memory": self.memory,
        }
        if isinstance(frame, w.Call):
            call = self.runtime.start_call(*start, frame.window, *ends, **options)
        else:
            call = self.runtime.start_batch(*start, bool(frame.stop), *ends, **options)
        if call is not None:
            self.calls[frame.id] = call

    def _handle_one(self, frame: w.HostFrame) -> None:
        if type(frame) is w.Call or type(frame) is w.Batch:
            self._start(frame)
        elif type(frame) is w.Cancel:
            running = self.calls.get(frame.id)
            if running is not None:
                running.cancel()  # withdrawn at once if it has not started
        elif type(frame) is w.Revoke:
            running = self.calls.get(frame.id)
            if running is not None:
                self.runtime.withdraw(running)  # a call that began just goes on
        elif type(frame) is w.Credit:
            running = self.calls.get(frame.id)
            if running is not None:
                running.add_credit(frame.n)
        elif type(frame) is w.SessionEnd:
            self.runtime.end_session(frame.session_id)
        elif type(frame) is w.Ping:
            self.emit(w.pong(frame.seq, _rss()))
        elif type(frame) is w.UnmappedResults:
            self.runtime.returned(frame.names, self.memory)
        elif type(frame) is w.Hello:
            # The lane answers it with WELCOME (worker/_lane.py); Connect does not.
            self.host_capabilities = frozenset(frame.capabilities or ())
            self._coalesce = w.CAP_CHUNKS in self.host_capabilities
            self.host.capabilities = self.host_capabilities
            if w.CAP_EVENTS in self.host_capabilities and self.events is None:
                self.events = Route(self.emit, asyncio.get_running_loop())
                self.runtime.outlet.bind(self.events)  # events outside calls go here too
        elif type(frame) is w.HostResult:
            self.host.on_result(frame)
        elif type(frame) is w.HostError:
            self.host.on_error(frame)

    def cancel_all(self) -> None:
        """The connection is over (both carriers call this last): every call is cancelled,
        every host call fails."""
        self.runtime.outlet.unbind(self.events)
        for call in list(self.calls.values()):
            call.cancel()
        self.host.close()

    def take_batches(self) -> list[bytes]:
        frames, self.outbox = self.outbox, []
        self._run = None  # sent: no chunk joins it now (and its payloads are not kept)
        return [
            msgpack.packb(batch, use_bin_type=True)
            for batch in w.split_batches(frames, w.payload_size)
        ]


def _host_answer_id(frame: object) -> int | None:
    """The host call id of what looks like a HOST_RESULT or HOST_ERROR, else None."""
    if type(frame) is list and len(frame) > 1 and frame[0] in (w.HOST_RESULT, w.HOST_ERROR):
        hcid = frame[1]
        return hcid if type(hcid) is int else None
    return None


@functools.cache
def _me() -> psutil.Process:
    return psutil.Process()


def _rss() -> int | None:
    """This process's resident memory, reported with each heartbeat (the host keeps the last
    value, so a worker killed for memory can be described as such)."""
    try:
        return int(_me().memory_info().rss)
    except (psutil.Error, OSError):
        return None


@functools.cache
def capabilities() -> tuple[str, ...]:
    """What this worker process offers beyond the protocol: "arrow" when pyarrow is
    installed here (found, not imported: see _arrow.py). Asked once per process: the
    template asks it, so forked workers do not search the import path again."""
    return (*w.WORKER_CAPABILITIES, *([w.CAP_ARROW] if arrow_available() else []))


def describe_map(runtime: Runtime, adapter_name: str) -> dict[str, Any]:
    """This worker's description: the WELCOME frame's map, and the Describe reply's fields
    (the shape is documented in proto/snakepit/v1/worker.proto)."""
    return {
        "protocol": w.PROTOCOL,
        "adapter": adapter_name,
        "pid": os.getpid(),
        "capacity": runtime.capacity,
        "capabilities": list(capabilities()),
        "runtime": "python",
        # Read now, after the adapter's import: an extension built without free-threading
        # support turns the GIL back on when it is imported.
        "gil_enabled": gil_enabled(),
        "thread_safe": runtime.thread_safe,
        "tools": [
            {
                "name": info.name,
                "description": info.description,
                "streaming": info.streaming,
                "accepts_extra": info.accepts_extra,
                "threaded": info.threaded,
                "params": [
                    {
                        "name": p.name,
                        "type": p.type,
                        "required": p.required,
                        "default": b"" if p.required else _encode_default(p.default),
                    }
                    for p in info.params
                ],
            }
            for info in runtime.tools.values()
        ],
    }


def gil_enabled() -> bool:
    """Whether this interpreter runs with the GIL (always, before free-threaded builds)."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def _encode_default(value: Any) -> bytes:
    try:
        return encode(value, what="default", limit=1 << 16)
    except Exception:  # an unencodable default is simply not advertised
        return b""
