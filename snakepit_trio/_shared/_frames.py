"""Frame kinds and field layout of the Connect data path (see proto/snakepit/v1/worker.proto).

Shared by the host and the worker runtime, so it imports neither trio nor asyncio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

PROTOCOL: Final = "snakepit.v1"

# Host -> worker.
CALL: Final = 0  # [CALL, id, tool, args, session_id, deadline, window]
CANCEL: Final = 1  # [CANCEL, id]
CREDIT: Final = 2  # [CREDIT, id, n]
SESSION_END: Final = 3  # [SESSION_END, session_id]
PING: Final = 4  # [PING, seq]: the worker answers PONG from its event loop
HELLO: Final = 5  # [HELLO, protocol]: first frame on the local lane (worker/_lane.py)
UNMAPPED_RESULTS: Final = 6  # [UNMAPPED_RESULTS, [segment name, ...]]: see _segments.py

# Worker -> host.
RESULT: Final = 10  # [RESULT, id, payload, run_time?]
CHUNK: Final = 11  # [CHUNK, id, payload]
END: Final = 12  # [END, id]
ERROR: Final = 13  # [ERROR, id, type, message, traceback, kind, detail?]
PROGRESS: Final = 14  # [PROGRESS, id, done, total, message]
PONG: Final = 15  # [PONG, seq, rss]: rss in bytes, or None if unreadable
WELCOME: Final = 16  # [WELCOME, describe]: serialized DescribeResponse, the lane's answer
UNMAPPED_ARGS: Final = 17  # [UNMAPPED_ARGS, [segment name, ...]]: see _segments.py

# ERROR kinds.
KIND_REMOTE: Final = "remote"
KIND_CANCELLED: Final = "cancelled"
KIND_UNKNOWN_TOOL: Final = "unknown_tool"
KIND_INVALID_ARGUMENTS: Final = "invalid_arguments"
KIND_SERIALIZATION: Final = "serialization"
KIND_PAYLOAD_TOO_LARGE: Final = "payload_too_large"
KIND_PROTOCOL: Final = "protocol"

# A message carries at most this many frames or (roughly) bytes, so one large payload does
# not hold a whole batch of small results behind it for long.
MAX_BATCH_FRAMES: Final = 512
MAX_BATCH_BYTES: Final = 1 << 20


def split_batches(frames: list[Any], size_of: Callable[[Any], int]) -> list[list[Any]]:
    """Cut ``frames`` into messages of at most MAX_BATCH_FRAMES frames and ~MAX_BATCH_BYTES.

    ``size_of(frame)`` gives the frame's payload size (each side knows where its payloads are).
    """
    out: list[list[Any]] = []
    start, size = 0, 0
    for i, frame in enumerate(frames):
        size += size_of(frame)
        if i + 1 - start >= MAX_BATCH_FRAMES or size >= MAX_BATCH_BYTES:
            out.append(frames[start : i + 1])
            start, size = i + 1, 0
    if start < len(frames):
        out.append(frames[start:])
    return out
