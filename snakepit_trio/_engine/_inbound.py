"""Frames from a worker, checked as a whole batch before any of it is acted on.

A worker that breaks the protocol is replaced (the engine kills it with cause "protocol");
this module only decides whether a batch is acceptable. Rules, besides each frame's own
shape (``_shared/_frames.py``):
- WELCOME belongs to the handshake; after it, it is a violation.
- A call's frames (RESULT, CHUNK, END, ERROR, PROGRESS) must name a call this worker is
  running: the dispatcher holds a call on its worker until that worker's final frame, so
  a frame for any other id, or after the call's final frame, is out of order.
- The call's handle decides what fits it: no chunks for unary calls, no RESULT for streams,
  no chunk beyond the credit the host granted.
"""

from __future__ import annotations

from typing import Any

from .._core._dispatcher import Call
from .._shared import _frames as w

_FINAL: tuple[type[Any], ...] = (w.Result, w.End, w.Error)
_OF_A_CALL: tuple[type[Any], ...] = (*_FINAL, w.Chunk, w.Progress)


def check_batch(raw: object, worker_id: str, calls: dict[int, Call]) -> list[w.WorkerFrame]:
    """Parse ``raw`` (one decoded batch from ``worker_id``) and check it against the calls.

    Raises:
        ProtocolViolation: a frame does not parse or does not fit; nothing may be applied.
    """
    frames: list[w.WorkerFrame] = w.parse_batch(raw, w.parse_from_worker)
    finished: set[int] = set()
    for frame in frames:
        kind = type(frame)
        if kind is w.Welcome:
            raise w.ProtocolViolation("WELCOME after the handshake")
        if kind not in _OF_A_CALL:
            continue
        call_id: int = frame.id  # type: ignore[union-attr]
        call = calls.get(call_id)
        if call is None or call.worker != worker_id or call_id in finished:
            raise w.ProtocolViolation(
                f"{kind.__name__.upper()} for call {call_id}, which this worker is not running"
            )
        problem = call.handle.accepts(frame)
        if problem is not None:
            raise w.ProtocolViolation(problem)
        if kind in _FINAL:
            finished.add(call_id)
    return frames
