"""Cutting worker output into lines (synchronous): bounded whatever the worker writes."""

from __future__ import annotations

from snakepit_trio._supervision._output import CUT, MAX_LINE, LineSplitter


def test_lines_end_at_newline_carriage_return_or_both() -> None:
    lines = LineSplitter()
    assert lines.feed(b"a\r\nb\rc\nd") == ["a", "b", "c"]
    assert lines.feed(b"e\r") == ["de"]
    assert lines.feed(b"\nf\n") == ["f"]  # the "\n" of a "\r\n" split between reads
    assert lines.feed(b"\n\n\r\r") == []  # blank lines are not logged
    assert lines.feed(b"last") == []
    assert lines.close() == ["last"]
    assert lines.close() == []


def test_a_long_line_is_logged_cut_at_the_limit_and_its_rest_dropped() -> None:
    lines = LineSplitter()
    out = []
    for _ in range(100):  # 6.4 MB with no line end
        out += lines.feed(b"x" * 65536)
    assert out == ["x" * (MAX_LINE - len(CUT)) + CUT]
    assert len(out[0]) == MAX_LINE
    assert lines.feed(b"rest of it\nnext line\n") == ["next line"]


def test_a_line_at_the_limit_is_whole_and_one_byte_more_is_cut() -> None:
    lines = LineSplitter()
    assert lines.feed(b"y" * MAX_LINE + b"\n") == ["y" * MAX_LINE]
    [cut] = lines.feed(b"z" * (MAX_LINE - 10)) + lines.feed(b"z" * 11)
    assert cut.endswith(CUT) and len(cut) == MAX_LINE
    assert lines.close() == []  # already logged


def test_undecodable_bytes_never_make_a_line_longer() -> None:
    lines = LineSplitter()
    [line] = lines.feed(b"\xff" * (2 * MAX_LINE) + b"\n")
    assert len(line) == MAX_LINE and line.startswith("\ufffd")
    assert lines.feed("é".encode() * 10 + b"\n") == ["é" * 10]
