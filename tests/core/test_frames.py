"""Core layer (synchronous): the frame protocol, its documentation and its parsers agree."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snakepit_trio._shared import _frames as w

PROTO = pathlib.Path(__file__).parents[2] / "proto" / "snakepit" / "v1" / "worker.proto"
ROW = re.compile(r"^//\s+(\d+)\s+([A-Z_]+)\s+([<>])\s+(.*)$")


def documented_table() -> dict[int, tuple[str, bool, list[tuple[str, str]], int]]:
    table = {}
    for line in PROTO.read_text().splitlines():
        m = ROW.match(line)
        if m is None:
            continue
        kind, name, direction, rest = m.groups()
        fields, required = [], 0
        for token in rest.split():
            optional = token.startswith("[")  # a field that may be left off the end
            field, type_ = (token[1:-1] if optional else token).split(":")
            fields.append((field, type_))
            if not optional:
                required += 1
        table[int(kind)] = (name, direction == ">", fields, required)
    return table


def test_the_proto_documents_exactly_the_code_table() -> None:
    documented = documented_table()
    assert len(documented) == len(w.TABLE) == 24
    for kind, spec in w.TABLE.items():
        assert documented[kind] == (spec.name, spec.to_worker, list(spec.fields), spec.required)
        assert getattr(w, spec.name) == kind
        assert list(w.TYPES[kind]._fields) == [name for name, _ in spec.fields]


# One valid value per field type, and values of every other type.
VALID: dict[str, Any] = {
    "uint": 7,
    "str": "s",
    "bin": b"b",
    "number": 1.5,
    "map": {"a": 1},
    "[str]": ["x"],
    "[bin]": [b"x", b""],
}
OTHERS: list[Any] = [-1, True, "s", b"b", 1.5, {"a": 1}, ["x"], [1], [b"x", "y"], [], None]


def valid_frame(kind: int) -> list[Any]:
    fields = w.TABLE[kind].fields
    frame: list[Any] = [kind, *(VALID[t.rstrip("?")] for _, t in fields)]
    if kind == w.ERROR:
        frame[5] = w.KIND_REMOTE
    if kind == w.HOST_ERROR:
        frame[4] = w.KIND_REENTRANCY
    return frame


@pytest.mark.parametrize("kind", sorted(w.TABLE))
def test_each_parser_takes_its_valid_frames_and_names_each_wrong_field(kind: int) -> None:
    spec = w.TABLE[kind]
    parse = w.parse_from_host if spec.to_worker else w.parse_from_worker
    wrong = w.parse_from_worker if spec.to_worker else w.parse_from_host
    frame = valid_frame(kind)
    parsed = parse(frame)
    assert type(parsed) is w.TYPES[kind] and list(parsed) == frame[1:]
    with pytest.raises(w.ProtocolViolation, match="is not a"):
        wrong(frame)  # the other direction's kind
    assert type(parse(frame[: spec.required + 1])) is w.TYPES[kind]  # optional tail left off
    with pytest.raises(w.ProtocolViolation, match=f"{spec.name} needs"):
        parse(frame[: spec.required])
    with pytest.raises(w.ProtocolViolation, match=f"{spec.name} needs"):
        parse([*frame, None])
    for i, (name, type_) in enumerate(spec.fields, start=1):
        for other in OTHERS:
            bad = list(frame)
            bad[i] = other
            if fits(type_, other) and not (kind in (w.ERROR, w.HOST_ERROR) and name == "kind"):
                assert type(parse(bad)) is w.TYPES[kind]
            else:
                with pytest.raises(w.ProtocolViolation, match=rf"{spec.name}\.{name} "):
                    parse(bad)


def fits(type_: str, value: Any) -> bool:
    """The documented meaning of each field type, stated independently of the parsers."""
    if value is None:
        return type_.endswith("?")
    return {
        "uint": lambda v: type(v) is int and v >= 0,
        "str": lambda v: type(v) is str,
        "bin": lambda v: type(v) is bytes,
        "number": lambda v: type(v) in (int, float),
        "map": lambda v: type(v) is dict,
        "[str]": lambda v: type(v) is list and all(type(x) is str for x in v),
        "[bin]": lambda v: type(v) is list and all(type(x) is bytes for x in v),
    }[type_.rstrip("?")](value)


def test_constructors_build_what_the_parsers_accept() -> None:
    frames = [
        w.call(1, "t", b"", None, None, 0),
        w.call(2, "t", b"\x80", "s", 1.5, 16),
        w.cancel(1),
        w.credit(1, 8),
        w.session_end("s"),
        w.ping(3),
        w.hello(),
        w.hello(capabilities=()),
        w.unmapped_results(["a"]),
        w.call(3, "t", b"", None, None, 0, {"borrow": True}),
        w.host_result(1, b"\x90"),
        w.host_error(1, "KeyError", "k", w.KIND_REMOTE),
        w.batch(3, "t", b"\x92\xc0\x80", None, None, stop=True),
        w.batch(4, "t", b"\x90", "s", 2.0, stop=False),
    ]
    assert [type(w.parse_from_host(f)) for f in frames] == [
        w.Call,
        w.Call,
        w.Cancel,
        w.Credit,
        w.SessionEnd,
        w.Ping,
        w.Hello,
        w.Hello,
        w.UnmappedResults,
        w.Call,
        w.HostResult,
        w.HostError,
        w.Batch,
        w.Batch,
    ]
    frames = [
        w.result(1, b"x", 0.001),
        w.result(1, b"x", None),
        w.chunk(1, b"x"),
        w.chunks(1, [b"x", b"y"]),
        w.end(1),
        w.error(1, "ValueError", "no", w.KIND_REMOTE, "tb"),
        w.error(1, "PayloadTooLarge", "big", w.KIND_PAYLOAD_TOO_LARGE, detail={"size": 2}),
        w.progress(1, 1, None, None),
        w.pong(1, None),
        w.welcome({}),
        w.unmapped_args([]),
        w.host_call(1, 2, "lookup", b""),
        w.host_call(1, 2, "lookup", b"", {"traceparent": "00-x"}),
        w.host_cancel(1),
        w.event(None, "loaded", {"seconds": 1.5}, {"model": "m"}, 0.25),
        w.event(3, "step", {}, {}, 1),
        w.host_tools(4, 2),
    ]
    assert [type(w.parse_from_worker(f)) for f in frames] == [
        w.Result,
        w.Result,
        w.Chunk,
        w.Chunks,
        w.End,
        w.Error,
        w.Error,
        w.Progress,
        w.Pong,
        w.Welcome,
        w.UnmappedArgs,
        w.HostCall,
        w.HostCall,
        w.HostCancel,
        w.Event,
        w.Event,
        w.HostTools,
    ]


def test_an_error_kind_outside_the_list_is_a_violation() -> None:
    with pytest.raises(w.ProtocolViolation, match=r"ERROR\.kind 'oops'"):
        w.parse_from_worker([w.ERROR, 1, "T", "m", "", "oops"])
    with pytest.raises(w.ProtocolViolation, match=r"HOST_ERROR\.kind 'protocol'"):
        w.parse_from_host([w.HOST_ERROR, 1, "T", "m", w.KIND_PROTOCOL])


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
        lambda inner: st.lists(inner, max_size=7),
        max_leaves=20,
    )
)
def test_junk_either_parses_or_raises_a_protocol_violation(junk: Any) -> None:
    for parse in (w.parse_from_host, w.parse_from_worker):
        try:
            parsed = parse(junk)
        except w.ProtocolViolation:
            continue
        assert type(parsed) in w.TYPES.values()


def test_a_batch_must_be_an_array_and_is_parsed_whole() -> None:
    with pytest.raises(w.ProtocolViolation, match="batch must be an array"):
        w.parse_batch({"a": 1}, w.parse_from_worker)
    with pytest.raises(w.ProtocolViolation, match="RESULT needs"):
        w.parse_batch([w.end(1), [w.RESULT]], w.parse_from_worker)
    assert w.parse_batch([w.end(1), w.pong(1, 5)], w.parse_from_worker) == [w.End(1), w.Pong(1, 5)]


def test_split_batches_caps_frames_and_bytes_and_keeps_order() -> None:
    frames = [[w.RESULT, i, b"x" * 10] for i in range(w.MAX_BATCH_FRAMES * 2 + 3)]
    batches = w.split_batches(frames, lambda f: len(f[2]))
    assert [len(b) for b in batches] == [w.MAX_BATCH_FRAMES, w.MAX_BATCH_FRAMES, 3]
    assert [f for b in batches for f in b] == frames

    big = [[w.RESULT, i, b""] for i in range(5)]
    sizes = {1: w.MAX_BATCH_BYTES, 3: w.MAX_BATCH_BYTES}
    batches = w.split_batches(big, lambda f: sizes.get(f[1], 0))
    assert [[f[1] for f in b] for b in batches] == [[0, 1], [2, 3], [4]]
    assert w.split_batches([], lambda f: 0) == []
