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
float), ``map``, ``[str]`` (a list of strings), ``[bin]`` (a list of bytes); a trailing ``?``
also allows nil. Fields after ``TABLE``'s required count may be left off the end of the array.
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
REVOKE: Final = 7
HOST_RESULT: Final = 8
HOST_ERROR: Final = 9
# Worker -> host.
RESULT: Final = 10
CHUNK: Final = 11
END: Final = 12
ERROR: Final = 13
PROGRESS: Final = 14
PONG: Final = 15
WELCOME: Final = 16
UNMAPPED_ARGS: Final = 17
HOST_CALL: Final = 18
HOST_CANCEL: Final = 19
EVENT: Final = 20
HOST_TOOLS: Final = 21
BATCH: Final = 22  # host -> worker: a kind's number says nothing of its direction (TABLE does)
CHUNKS: Final = 23  # worker -> host

# Frames that start a call (a transport reports the ids of those it never delivered).
CALL_KINDS: Final = frozenset({CALL, BATCH})

# What each side can do beyond the frames every peer speaks, named in the handshake (the
# host's in HELLO, the worker's in its description). Nothing is sent to a peer that did not
# name it: a worker asks for host tools only from a host that serves them, and so on.
CAP_HOST_TOOLS: Final = "host_tools"  # HOST_CALL, HOST_CANCEL, HOST_TOOLS and their answers
CAP_EVENTS: Final = "events"  # EVENT
CAP_CALL_META: Final = "call_meta"  # CALL's meta map
CAP_BATCH: Final = "batch"  # BATCH
CAP_ARROW: Final = "arrow"  # payloads' extension types 4 and 5 (Arrow IPC streams), read
CAP_CHUNKS: Final = "chunks"  # CHUNKS (a host that reads several chunks in one frame)
HOST_CAPABILITIES: Final = (CAP_HOST_TOOLS, CAP_EVENTS, CAP_CHUNKS)
WORKER_CAPABILITIES: Final = (CAP_HOST_TOOLS, CAP_EVENTS, CAP_CALL_META, CAP_BATCH)

# ERROR kinds.
KIND_REMOTE: Final = "remote"
KIND_CANCELLED: Final = "cancelled"
KIND_UNKNOWN_TOOL: Final = "unknown_tool"
KIND_INVALID_ARGUMENTS: Final = "invalid_arguments"
KIND_SERIALIZATION: Final = "serialization"
KIND_PAYLOAD_TOO_LARGE: Final = "payload_too_large"
KIND_PROTOCOL: Final = "protocol"
KIND_REENTRANCY: Final = "reentrancy"  # HOST_ERROR only: a nested call that cannot run
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
# HOST_ERROR kinds: a host tool raised, is unknown, got bad arguments, was cancelled (or its
# call's deadline passed), could not encode its result, or made a nested call that cannot run.
HOST_ERROR_KINDS: Final = frozenset(
    {
        KIND_REMOTE,
        KIND_UNKNOWN_TOOL,
        KIND_INVALID_ARGUMENTS,
        KIND_CANCELLED,
        KIND_SERIALIZATION,
        KIND_REENTRANCY,
    }
)

# A message carries at most this many frames or (roughly) bytes, so one large payload does
# not hold a whole batch of small results behind it for long.
MAX_BATCH_FRAMES: Final = 512
MAX_BATCH_BYTES: Final = 1 << 20
# A CHUNKS frame holds at most as many chunks and bytes as a message would as CHUNK frames
# (one larger chunk travels alone, as it would in a CHUNK).
MAX_CHUNKS: Final = MAX_BATCH_FRAMES

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
        "meta:map?",
        required=6,
    ),
    CANCEL: _spec("CANCEL", True, "id:uint"),
    CREDIT: _spec("CREDIT", True, "id:uint", "n:uint"),
    SESSION_END: _spec("SESSION_END", True, "session_id:str"),
    PING: _spec("PING", True, "seq:uint"),
    HELLO: _spec("HELLO", True, "protocol:str", "capabilities:[str]", "shm:map?", required=1),
    UNMAPPED_RESULTS: _spec("UNMAPPED_RESULTS", True, "names:[str]"),
    REVOKE: _spec("REVOKE", True, "id:uint"),
    HOST_RESULT: _spec("HOST_RESULT", True, "id:uint", "result:bin"),
    HOST_ERROR: _spec("HOST_ERROR", True, "id:uint", "type:str", "message:str", "kind:str"),
    BATCH: _spec(
        "BATCH",
        True,
        "id:uint",
        "tool:str",
        "args:bin",
        "session_id:str?",
        "deadline:number?",
        "stop:uint",
        "meta:map?",
        required=6,
    ),
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
    HOST_CALL: _spec(
        "HOST_CALL",
        False,
        "id:uint",
        "call_id:uint",
        "tool:str",
        "args:bin",
        "meta:map?",
        required=4,
    ),
    HOST_CANCEL: _spec("HOST_CANCEL", False, "id:uint"),
    EVENT: _spec(
        "EVENT",
        False,
        "call_id:uint?",
        "name:str",
        "measurements:map",
        "metadata:map",
        "time:number",
    ),
    HOST_TOOLS: _spec("HOST_TOOLS", False, "id:uint", "call_id:uint"),
    CHUNKS: _spec("CHUNKS", False, "id:uint", "chunks:[bin]"),
}


# --- parsed frames (field names as in TABLE) -----------------------------------------------
class Call(NamedTuple):
    id: int
    tool: str
    args: bytes
    session_id: str | None
    deadline: float | None  # seconds left when it was sent, or None
    window: int  # a streaming call's first credit, in chunks; 0 for a unary call
    meta: dict[str, Any] | None = None  # sent only to workers that named CAP_CALL_META


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
    capabilities: list[str] | None = None
    shm: dict[str, Any] | None = None  # over TCP: an offer of shared memory (_samehost.py)


class UnmappedResults(NamedTuple):
    names: list[str]


class Revoke(NamedTuple):
    id: int


class HostResult(NamedTuple):
    id: int  # the host call's id (HOST_CALL.id), not a call's
    result: bytes


class HostError(NamedTuple):
    id: int
    type: str
    message: str
    kind: str


class Batch(NamedTuple):
    id: int
    tool: str
    args: bytes  # a msgpack array: each item's keyword arguments (a map, or nil)
    session_id: str | None
    deadline: float | None
    stop: int  # 1: the first call that raises ends the batch
    meta: dict[str, Any] | None = None  # as CALL's


class Result(NamedTuple):
    id: int
    result: bytes
    run_time: float | None = None


class Chunk(NamedTuple):
    id: int
    chunk: bytes


class Chunks(NamedTuple):
    id: int
    chunks: list[bytes]  # in the order they were yielded; at least one


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


class HostCall(NamedTuple):
    id: int  # chosen by the worker, unique among its open host calls
    call_id: int  # the call whose tool asks: host tools resolve against its session
    tool: str
    args: bytes
    meta: dict[str, Any] | None = None


class HostCancel(NamedTuple):
    id: int


class Event(NamedTuple):
    call_id: int | None  # the call it belongs to, or None (e.g. from ``initialize``)
    name: str
    measurements: dict[str, Any]
    metadata: dict[str, Any]
    time: float  # seconds since the worker started


class HostTools(NamedTuple):
    id: int  # answered like a host call: HOST_RESULT (a list of tool specs) or HOST_ERROR
    call_id: int


HostFrame = (
    Call
    | Cancel
    | Credit
    | SessionEnd
    | Ping
    | Hello
    | UnmappedResults
    | Revoke
    | HostResult
    | HostError
    | Batch
)
WorkerFrame = (
    Result
    | Chunk
    | Chunks
    | End
    | Error
    | Progress
    | Pong
    | Welcome
    | UnmappedArgs
    | HostCall
    | HostCancel
    | Event
    | HostTools
)
# Frames that belong to one call, by the call's id.
CallFrame = Result | Chunk | Chunks | End | Error | Progress

TYPES: Final[dict[int, type[tuple[Any, ...]]]] = {
    CALL: Call,
    CANCEL: Cancel,
    CREDIT: Credit,
    SESSION_END: SessionEnd,
    PING: Ping,
    HELLO: Hello,
    UNMAPPED_RESULTS: UnmappedResults,
    REVOKE: Revoke,
    HOST_RESULT: HostResult,
    HOST_ERROR: HostError,
    BATCH: Batch,
    RESULT: Result,
    CHUNK: Chunk,
    CHUNKS: Chunks,
    END: End,
    ERROR: Error,
    PROGRESS: Progress,
    PONG: Pong,
    WELCOME: Welcome,
    UNMAPPED_ARGS: UnmappedArgs,
    HOST_CALL: HostCall,
    HOST_CANCEL: HostCancel,
    EVENT: Event,
    HOST_TOOLS: HostTools,
}


# --- constructors (what goes on the wire) --------------------------------------------------
def call(
    id: int,
    tool: str,
    args: bytes,
    session_id: str | None,
    deadline: float | None,
    window: int,
    meta: dict[str, Any] | None = None,
) -> list[Any]:
    if meta is None:
        return [CALL, id, tool, args, session_id, deadline, window]
    return [CALL, id, tool, args, session_id, deadline, window, meta]


def cancel(id: int) -> list[Any]:
    return [CANCEL, id]


def credit(id: int, n: int) -> list[Any]:
    return [CREDIT, id, n]


def session_end(session_id: str) -> list[Any]:
    return [SESSION_END, session_id]


def ping(seq: int) -> list[Any]:
    return [PING, seq]


def hello(
    protocol: str = PROTOCOL,
    capabilities: tuple[str, ...] = HOST_CAPABILITIES,
    shm: dict[str, Any] | None = None,
) -> list[Any]:
    if shm is None:
        return [HELLO, protocol, list(capabilities)]
    return [HELLO, protocol, list(capabilities), shm]


def unmapped_results(names: list[str]) -> list[Any]:
    return [UNMAPPED_RESULTS, names]


def revoke(id: int) -> list[Any]:
    return [REVOKE, id]


def host_result(id: int, payload: bytes) -> list[Any]:
    return [HOST_RESULT, id, payload]


def host_error(id: int, type_: str, message: str, kind: str) -> list[Any]:
    return [HOST_ERROR, id, type_, message, kind]


def batch(
    id: int,
    tool: str,
    args: bytes,
    session_id: str | None,
    deadline: float | None,
    stop: bool,
    meta: dict[str, Any] | None = None,
) -> list[Any]:
    if meta is None:
        return [BATCH, id, tool, args, session_id, deadline, int(stop)]
    return [BATCH, id, tool, args, session_id, deadline, int(stop), meta]


def result(id: int, payload: bytes, run_time: float | None) -> list[Any]:
    return [RESULT, id, payload, run_time]


def chunk(id: int, payload: bytes) -> list[Any]:
    return [CHUNK, id, payload]


def chunks(id: int, payloads: list[bytes]) -> list[Any]:
    return [CHUNKS, id, payloads]


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


def host_call(
    id: int, call_id: int, tool: str, args: bytes, meta: dict[str, Any] | None = None
) -> list[Any]:
    if meta is None:
        return [HOST_CALL, id, call_id, tool, args]
    return [HOST_CALL, id, call_id, tool, args, meta]


def host_cancel(id: int) -> list[Any]:
    return [HOST_CANCEL, id]


def event(
    call_id: int | None,
    name: str,
    measurements: dict[str, Any],
    metadata: dict[str, Any],
    time: float,
) -> list[Any]:
    return [EVENT, call_id, name, measurements, metadata, time]


def host_tools(id: int, call_id: int) -> list[Any]:
    return [HOST_TOOLS, id, call_id]


# --- parsers --------------------------------------------------------------------------------
def _is_uint(v: object) -> bool:
    return type(v) is int and v >= 0


def _is_number(v: object) -> bool:
    return type(v) is int or type(v) is float


def _is_str_list(v: object) -> bool:
    return type(v) is list and all(type(x) is str for x in v)


def _is_bin_list(v: object) -> bool:
    return type(v) is list and all(type(x) is bytes for x in v)


_CHECKS: Final[dict[str, Callable[[object], bool]]] = {
    "uint": _is_uint,
    "str": lambda v: type(v) is str,
    "bin": lambda v: type(v) is bytes,
    "number": _is_number,
    "map": lambda v: type(v) is dict,
    "[str]": _is_str_list,
    "[bin]": _is_bin_list,
}


def _explain(kind: int, frame: list[Any]) -> ProtocolViolation:
    """What is wrong with ``frame``, a frame of ``kind`` that its parser refused."""
    spec = TABLE[kind]
    lo, hi = spec.required + 1, len(spec.fields) + 1
    n = len(frame)
    if n < lo or n > hi:
        expected = f"{lo - 1}" if lo == hi else f"{lo - 1} to {hi - 1}"
        return ProtocolViolation(f"{spec.name} needs {expected} fields, got {n - 1}")
    for (name, type_name), value in zip(spec.fields, frame[1:], strict=False):
        nullable = type_name.endswith("?")
        if not (_CHECKS[type_name.rstrip("?")](value) or (nullable and value is None)):
            return ProtocolViolation(f"{spec.name}.{name} must be {type_name}, got {_short(value)}")
    if kind in _KINDS:
        at, kinds = _KINDS[kind]
        return ProtocolViolation(f"{spec.name}.kind {frame[at]!r} is not one of {sorted(kinds)}")
    raise AssertionError(f"{spec.name} {frame!r} was refused for no reason")  # pragma: no cover


# Frames whose kind field must be one of a set: (its index in the frame, the set).
_KINDS: Final[dict[int, tuple[int, frozenset[str]]]] = {
    ERROR: (5, ERROR_KINDS),
    HOST_ERROR: (4, HOST_ERROR_KINDS),
}

# One expression per field type, on ``v``; the parsers inline them (as attrs and dataclasses
# generate their methods): a frame is checked with no call per field, which matters on the hot
# path (every chunk of every stream). ``_CHECKS`` above says the same, for the messages.
_INLINE: Final[dict[str, str]] = {
    "uint": "(type({v}) is int and {v} >= 0)",
    "str": "type({v}) is str",
    "bin": "type({v}) is bytes",
    "number": "(type({v}) is int or type({v}) is float)",
    "map": "type({v}) is dict",
    "[str]": "(type({v}) is list and all(type(x) is str for x in {v}))",
    "[bin]": "(type({v}) is list and all(type(x) is bytes for x in {v}))",
}


def _make_parser(kind: int) -> Callable[[list[Any]], Any]:
    """The parser of ``kind``, generated from ``TABLE``: checks arity and every field, and
    returns the typed frame (left-off optional fields are None)."""
    spec = TABLE[kind]
    lo, hi = spec.required + 1, len(spec.fields) + 1
    tests = [f"{lo} <= n <= {hi}" if lo != hi else f"n == {lo}"]
    values = []
    for i, (_, type_name) in enumerate(spec.fields, start=1):
        check = _INLINE[type_name.rstrip("?")].format(v=f"frame[{i}]")
        if type_name.endswith("?"):
            check = f"(frame[{i}] is None or {check})"
        if i > spec.required:  # may be left off the end
            check = f"(n <= {i} or {check})"
            values.append(f"(frame[{i}] if n > {i} else None)")
        else:
            values.append(f"frame[{i}]")
        tests.append(check)
    if kind in _KINDS:  # its kind is one of a few
        tests.append(f"frame[{_KINDS[kind][0]}] in kinds")
    source = (
        "def parse(frame):\n"
        "    n = len(frame)\n"
        f"    if {' and '.join(tests)}:\n"
        f"        return new(make, ({', '.join(values)},))\n"
        "    raise explain(kind, frame)\n"
    )
    namespace: dict[str, Any] = {
        "new": tuple.__new__,
        "make": TYPES[kind],
        "explain": _explain,
        "kind": kind,
        "kinds": _KINDS.get(kind, (0, frozenset()))[1],
    }
    exec(compile(source, f"<parser of {spec.name}>", "exec"), namespace)
    parse: Callable[[list[Any]], Any] = namespace["parse"]
    return parse


def _short(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


_PARSERS: Final = {kind: _make_parser(kind) for kind in TABLE}
# The parsers by direction, for loops over whole batches (``parse_from_*`` wrap them).
FROM_HOST: Final[dict[int, Callable[[list[Any]], Any]]] = {
    kind: p for kind, p in _PARSERS.items() if TABLE[kind].to_worker
}
FROM_WORKER: Final[dict[int, Callable[[list[Any]], Any]]] = {
    kind: p for kind, p in _PARSERS.items() if not TABLE[kind].to_worker
}


def refused(frame: object, *, from_worker: bool) -> ProtocolViolation:
    """Why ``frame`` has no parser in ``FROM_WORKER`` (or ``FROM_HOST``)."""
    if type(frame) is not list or not frame:
        return ProtocolViolation(f"a frame must be a non-empty array, got {_short(frame)}")
    side = "worker to host" if from_worker else "host to worker"
    return ProtocolViolation(f"{_short(frame[0])} is not a {side} frame kind")


def _parse(
    frame: object, parsers: dict[int, Callable[[list[Any]], Any]], *, from_worker: bool
) -> Any:
    if type(frame) is list and frame and type(frame[0]) is int:
        parse = parsers.get(frame[0])
        if parse is not None:
            return parse(frame)
    raise refused(frame, from_worker=from_worker)


def parse_from_worker(frame: object) -> WorkerFrame:
    """Check a frame a worker sent and return it typed.

    Raises:
        ProtocolViolation: it is not a worker-to-host frame with the fields ``TABLE`` lists.
    """
    parsed: WorkerFrame = _parse(frame, FROM_WORKER, from_worker=True)
    return parsed


def parse_from_host(frame: object) -> HostFrame:
    """Check a frame the host sent and return it typed.

    Raises:
        ProtocolViolation: it is not a host-to-worker frame with the fields ``TABLE`` lists.
    """
    parsed: HostFrame = _parse(frame, FROM_HOST, from_worker=False)
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
    kind = frame[0]
    if kind in CALL_KINDS:
        return len(frame[3])
    if kind == HOST_RESULT:
        return len(frame[2])
    return 0


def payload_size(frame: list[Any]) -> int:
    """The payload size of a worker-to-host frame (for ``split_batches``): a result's or
    chunk's bytes, a host call's arguments, an error's or a progress report's text (each
    may be long, and a batch of them must stay within the host's message limit)."""
    kind = frame[0]
    if kind in (RESULT, CHUNK) and len(frame) > 2 and type(frame[2]) is bytes:
        return len(frame[2])
    if kind == CHUNKS and len(frame) > 2 and type(frame[2]) is list:
        try:
            return sum(map(len, frame[2]))  # per chunk of every stream: no Python loop
        except TypeError:
            return 0  # not all bytes: the receiver refuses the frame anyway
    if kind == HOST_CALL and len(frame) > 4 and type(frame[4]) is bytes:
        return len(frame[4])
    if kind == ERROR and len(frame) > 4:
        return _text_size(frame[3]) + _text_size(frame[4])
    if kind == PROGRESS and len(frame) > 4:
        return _text_size(frame[4])
    return 0


def _text_size(text: object) -> int:
    if type(text) is not str:
        return 0
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
