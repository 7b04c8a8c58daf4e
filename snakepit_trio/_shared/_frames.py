"""The frame protocol of the Connect data path: one constructor and one parser per kind.

Shared by the host and the worker runtime, so it imports neither trio nor asyncio.

How this works: a frame is a msgpack array whose first element is its kind. ``TABLE`` is the
protocol, written once: each kind's name, direction and fields (name and type). The proto file
(proto/snakepit/v1/worker.proto) documents the same table, and a test compares the two.
Senders build frames with the constructors below (plain lists: that is what msgpack packs
fastest). Receivers check every frame with ``parse_from_worker`` / ``parse_from_host``, which
return a typed, field-named tuple or raise ``ProtocolViolation`` naming the kind, the field
and what was wrong. The parsers are made from ``TABLE``, so code and table cannot disagree.

Field types: ``uint`` (a non-negative int), ``str``, ``bin`` (bytes), ``number`` (int or
float), ``map``, ``[str]`` (a list of strings); a trailing ``?`` also allows nil. Fields after
``TABLE``'s required count may be left off the end of the array.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NamedTuple

PROTOCOL: Final = "snakepit.v1"

# Host -> worker.
CALL: Final = 0
CANCEL: Final = 1
CREDIT: Final = 2
SESSION_END: Final = 3
PING: Final = 4
HELLO: Final = 5
UNMAPPED_RESULTS: Final = 6
# Worker -> host.
RESULT: Final = 10
CHUNK: Final = 11
END: Final = 12
ERROR: Final = 13
PROGRESS: Final = 14
PONG: Final = 15
WELCOME: Final = 16
UNMAPPED_ARGS: Final = 17

# ERROR kinds.
KIND_REMOTE: Final = "remote"
KIND_CANCELLED: Final = "cancelled"
KIND_UNKNOWN_TOOL: Final = "unknown_tool"
KIND_INVALID_ARGUMENTS: Final = "invalid_arguments"
KIND_SERIALIZATION: Final = "serialization"
KIND_PAYLOAD_TOO_LARGE: Final = "payload_too_large"
KIND_PROTOCOL: Final = "protocol"
ERROR_KINDS: Final = frozenset(
    {
        KIND_REMOTE,
        KIND_CANCELLED,
        KIND_UNKNOWN_TOOL,
        KIND_INVALID_ARGUMENTS,
        KIND_SERIALIZATION,
        KIND_PAYLOAD_TOO_LARGE,
        KIND_PROTOCOL,
    }
)

# A message carries at most this many frames or (roughly) bytes, so one large payload does
# not hold a whole batch of small results behind it for long.
MAX_BATCH_FRAMES: Final = 512
MAX_BATCH_BYTES: Final = 1 << 20

# The local lane: each message is a msgpack array of frames, prefixed with its length.
LANE_HEADER_BYTES: Final = 4  # unsigned, little-endian


class ProtocolViolation(Exception):
    """A frame that does not parse, or that arrives where the protocol allows none."""


class FrameSpec(NamedTuple):
    name: str
    to_worker: bool  # True: host -> worker; False: worker -> host
    fields: tuple[tuple[str, str], ...]
    required: int  # how many fields must be present; the rest may be left off the end


def _spec(name: str, to_worker: bool, *fields: str, required: int | None = None) -> FrameSpec:
    pairs = tuple((f.split(":")[0], f.split(":")[1]) for f in fields)
    return FrameSpec(name, to_worker, pairs, len(pairs) if required is None else required)


TABLE: Final[dict[int, FrameSpec]] = {
    CALL: _spec(
        "CALL",
        True,
        "id:uint",
        "tool:str",
        "args:bin",
        "session_id:str?",
        "deadline:number?",
        "window:uint",
    ),
    CANCEL: _spec("CANCEL", True, "id:uint"),
    CREDIT: _spec("CREDIT", True, "id:uint", "n:uint"),
    SESSION_END: _spec("SESSION_END", True, "session_id:str"),
    PING: _spec("PING", True, "seq:uint"),
    HELLO: _spec("HELLO", True, "protocol:str"),
    UNMAPPED_RESULTS: _spec("UNMAPPED_RESULTS", True, "names:[str]"),
    RESULT: _spec("RESULT", False, "id:uint", "result:bin", "run_time:number?", required=2),
    CHUNK: _spec("CHUNK", False, "id:uint", "chunk:bin"),
    END: _spec("END", False, "id:uint"),
    ERROR: _spec(
        "ERROR",
        False,
        "id:uint",
        "type:str",
        "message:str",
        "traceback:str",
        "kind:str",
        "detail:map?",
        required=5,
    ),
    PROGRESS: _spec("PROGRESS", False, "id:uint", "done:number", "total:number?", "message:str?"),
    PONG: _spec("PONG", False, "seq:uint", "rss:uint?"),
    WELCOME: _spec("WELCOME", False, "describe:map"),
    UNMAPPED_ARGS: _spec("UNMAPPED_ARGS", False, "names:[str]"),
}


# --- parsed frames (field names as in TABLE) -----------------------------------------------
class Call(NamedTuple):
    id: int
    tool: str
    args: bytes
    session_id: str | None
    deadline: float | None  # seconds left when it was sent, or None
    window: int  # a streaming call's first credit, in chunks; 0 for a unary call


class Cancel(NamedTuple):
    id: int


class Credit(NamedTuple):
    id: int
    n: int


class SessionEnd(NamedTuple):
    session_id: str


class Ping(NamedTuple):
    seq: int


class Hello(NamedTuple):
    protocol: str


class UnmappedResults(NamedTuple):
    names: list[str]


class Result(NamedTuple):
    id: int
    result: bytes
    run_time: float | None = None


class Chunk(NamedTuple):
    id: int
    chunk: bytes


class End(NamedTuple):
    id: int


class Error(NamedTuple):
    id: int
    type: str
    message: str
    traceback: str
    kind: str
    detail: dict[str, Any] | None = None


class Progress(NamedTuple):
    id: int
    done: float
    total: float | None
    message: str | None


class Pong(NamedTuple):
    seq: int
    rss: int | None


class Welcome(NamedTuple):
    describe: dict[str, Any]


class UnmappedArgs(NamedTuple):
    names: list[str]


HostFrame = Call | Cancel | Credit | SessionEnd | Ping | Hello | UnmappedResults
WorkerFrame = Result | Chunk | End | Error | Progress | Pong | Welcome | UnmappedArgs
# Frames that belong to one call, by the call's id.
CallFrame = Result | Chunk | End | Error | Progress

TYPES: Final[dict[int, type[tuple[Any, ...]]]] = {
    CALL: Call,
    CANCEL: Cancel,
    CREDIT: Credit,
    SESSION_END: SessionEnd,
    PING: Ping,
    HELLO: Hello,
    UNMAPPED_RESULTS: UnmappedResults,
    RESULT: Result,
    CHUNK: Chunk,
    END: End,
    ERROR: Error,
    PROGRESS: Progress,
    PONG: Pong,
    WELCOME: Welcome,
    UNMAPPED_ARGS: UnmappedArgs,
}


# --- constructors (what goes on the wire) --------------------------------------------------
def call(
    id: int,
    tool: str,
    args: bytes,
    session_id: str | None,
    deadline: float | None,
    window: int,
) -> list[Any]:
    return [CALL, id, tool, args, session_id, deadline, window]


def cancel(id: int) -> list[Any]:
    return [CANCEL, id]


def credit(id: int, n: int) -> list[Any]:
    return [CREDIT, id, n]


def session_end(session_id: str) -> list[Any]:
    return [SESSION_END, session_id]


def ping(seq: int) -> list[Any]:
    return [PING, seq]


def hello(protocol: str = PROTOCOL) -> list[Any]:
    return [HELLO, protocol]


def unmapped_results(names: list[str]) -> list[Any]:
    return [UNMAPPED_RESULTS, names]


def result(id: int, payload: bytes, run_time: float | None) -> list[Any]:
    return [RESULT, id, payload, run_time]


def chunk(id: int, payload: bytes) -> list[Any]:
    return [CHUNK, id, payload]


def end(id: int) -> list[Any]:
    return [END, id]


def error(
    id: int,
    type_: str,
    message: str,
    kind: str,
    traceback: str = "",
    detail: dict[str, Any] | None = None,
) -> list[Any]:
    frame = [ERROR, id, type_, message, traceback, kind]
    if detail is not None:
        frame.append(detail)
    return frame


def progress(id: int, done: float, total: float | None, message: str | None) -> list[Any]:
    return [PROGRESS, id, done, total, message]


def pong(seq: int, rss: int | None) -> list[Any]:
    return [PONG, seq, rss]


def welcome(describe: dict[str, Any]) -> list[Any]:
    return [WELCOME, describe]


def unmapped_args(names: list[str]) -> list[Any]:
    return [UNMAPPED_ARGS, names]


# --- parsers --------------------------------------------------------------------------------
def _is_uint(v: object) -> bool:
    return type(v) is int and v >= 0


def _is_number(v: object) -> bool:
    return type(v) is int or type(v) is float


def _is_str_list(v: object) -> bool:
    return type(v) is list and all(type(x) is str for x in v)


_CHECKS: Final[dict[str, Callable[[object], bool]]] = {
    "uint": _is_uint,
    "str": lambda v: type(v) is str,
    "bin": lambda v: type(v) is bytes,
    "number": _is_number,
    "map": lambda v: type(v) is dict,
    "[str]": _is_str_list,
}


def _make_parser(kind: int) -> Callable[[list[Any]], Any]:
    spec = TABLE[kind]
    make = TYPES[kind]
    checks = []
    for name, type_name in spec.fields:
        nullable = type_name.endswith("?")
        check = _CHECKS[type_name.rstrip("?")]
        checks.append((name, type_name, nullable, check))
    lo, hi = spec.required + 1, len(spec.fields) + 1

    def parse(frame: list[Any]) -> Any:
        n = len(frame)
        if n < lo or n > hi:
            expected = f"{lo - 1}" if lo == hi else f"{lo - 1} to {hi - 1}"
            raise ProtocolViolation(f"{spec.name} needs {expected} fields, got {n - 1}")
        for i in range(1, n):
            name, type_name, nullable, check = checks[i - 1]
            value = frame[i]
            if not (check(value) or (nullable and value is None)):
                raise ProtocolViolation(
                    f"{spec.name}.{name} must be {type_name}, got {_short(value)}"
                )
        return make(*frame[1:])

    return parse


def _short(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


_PARSERS: Final = {kind: _make_parser(kind) for kind in TABLE}
_TO_WORKER: Final = {kind for kind, spec in TABLE.items() if spec.to_worker}


def _parse(frame: object, to_worker: bool) -> Any:
    if type(frame) is not list or not frame:
        raise ProtocolViolation(f"a frame must be a non-empty array, got {_short(frame)}")
    kind = frame[0]
    parser = _PARSERS.get(kind) if type(kind) is int else None
    if parser is None or (kind in _TO_WORKER) is not to_worker:
        side = "host to worker" if to_worker else "worker to host"
        raise ProtocolViolation(f"{_short(kind)} is not a {side} frame kind")
    return parser(frame)


def parse_from_worker(frame: object) -> WorkerFrame:
    """Check a frame a worker sent and return it typed.

    Raises:
        ProtocolViolation: it is not a worker-to-host frame with the fields ``TABLE`` lists.
    """
    parsed: WorkerFrame = _parse(frame, to_worker=False)
    if type(parsed) is Error and parsed.kind not in ERROR_KINDS:
        raise ProtocolViolation(f"ERROR.kind {parsed.kind!r} is not one of {sorted(ERROR_KINDS)}")
    return parsed


def parse_from_host(frame: object) -> HostFrame:
    """Check a frame the host sent and return it typed.

    Raises:
        ProtocolViolation: it is not a host-to-worker frame with the fields ``TABLE`` lists.
    """
    parsed: HostFrame = _parse(frame, to_worker=True)
    return parsed


def parse_batch(frames: object, parse: Callable[[object], Any]) -> list[Any]:
    """Parse a whole batch before any of it is acted on (a batch is never half-applied).

    Raises:
        ProtocolViolation: the batch is not an array, or one of its frames does not parse.
    """
    if type(frames) is not list:
        raise ProtocolViolation(f"a batch must be an array of frames, got {_short(frames)}")
    return [parse(frame) for frame in frames]


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


def call_size(frame: list[Any]) -> int:
    """The payload size of a host-to-worker frame (for ``split_batches``)."""
    return len(frame[3]) if frame[0] == CALL else 0


def payload_size(frame: list[Any]) -> int:
    """The payload size of a worker-to-host frame (for ``split_batches``)."""
    if frame[0] in (RESULT, CHUNK) and len(frame) > 2 and type(frame[2]) is bytes:
        return len(frame[2])
    return 0
